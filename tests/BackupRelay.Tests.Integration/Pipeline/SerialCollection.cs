namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// Tests that must run alone, after the parallel ones: those that load the whole machine, and those
/// whose listeners (spans, meters) are process-wide.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial";
}
