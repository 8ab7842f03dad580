namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>The host's keys: its master key (anything, admin included), host keys (any function-level function), per-function keys.</summary>
public sealed record HostKeys(string MasterKey, IReadOnlyList<string> HostKeyValues, IReadOnlyDictionary<string, string> FunctionKeys);
