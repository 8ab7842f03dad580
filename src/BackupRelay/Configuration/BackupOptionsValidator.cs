using BackupRelay.HuaweiCloud;
using BackupRelay.Scheduling;
using BackupRelay.Storage;
using Microsoft.Extensions.Options;

namespace BackupRelay.Configuration;

/// <summary>Start-up validation naming the app setting to fix.</summary>
public sealed class BackupOptionsValidator : IValidateOptions<BackupOptions>
{
    public ValidateOptionsResult Validate(string? name, BackupOptions options)
    {
        var failures = new List<string>();
        SettingAnnotations.Validate(options, "Backup__", failures); // [Required] and the like, worded with the setting's name
        try
        {
            if (!string.IsNullOrEmpty(options.Schedule))
            {
                ScheduleBackupsHandler.Parse(options.Schedule);
            }
        }
        catch (Exception ex) when (ex is NCrontab.CrontabException or FormatException or ArgumentException)
        {
            failures.Add($"Backup__Schedule '{options.Schedule}' is not an NCRONTAB expression (six fields with seconds, or five): {ex.Message}");
        }

        if (options.StartInterval < TimeSpan.Zero || options.StartInterval > TimeSpan.FromMinutes(1))
        {
            failures.Add("Backup__StartInterval must be between 00:00:00 and 00:01:00.");
        }

        for (var i = 0; i < options.Graphs.Count; i++)
        {
            SettingAnnotations.Validate(options.Graphs[i], $"Backup__Graphs__{i}__", failures);
            if (!string.IsNullOrEmpty(options.Graphs[i].GraphId) && !HuaweiCloudIds.IsValidId(options.Graphs[i].GraphId))
            {
                failures.Add($"Backup__Graphs__{i}__GraphId must be a GES graph id (letters, digits, '-', '_', '.', '~').");
            }

            if (options.Graphs[i].FreshnessThreshold is { } threshold && threshold <= TimeSpan.Zero)
            {
                failures.Add($"Backup__Graphs__{i}__FreshnessThreshold must be longer than zero.");
            }

            CheckDrill(options, i, failures);

            if (options.Graphs[i].Name is { } folder && !Copying.CopyPaths.IsSafeSegment(folder))
            {
                failures.Add($"Backup__Graphs__{i}__Name must be a single folder name: 1-128 of A-Z a-z 0-9 . _ ~ -, starting with a letter or digit.");
            }
        }

        if (options.Graphs.Select(g => g.GraphId).Distinct(StringComparer.Ordinal).Count() != options.Graphs.Count)
        {
            failures.Add("Backup__Graphs lists a graph twice.");
        }

        foreach (var (setting, value) in new[]
                 {
                     ("PollInitialDelay", options.PollInitialDelay), ("PollMaxDelay", options.PollMaxDelay), ("JobDeadline", options.JobDeadline),
                     ("OperationPollInterval", options.OperationPollInterval),
                 })
        {
            if (value <= TimeSpan.Zero)
            {
                failures.Add($"Backup__{setting} must be a positive time span (e.g. 00:00:15).");
            }
        }

        if (options.RunRetention < TimeSpan.Zero || (options.RunRetention > TimeSpan.Zero && options.RunRetention < TimeSpan.FromDays(1)))
        {
            failures.Add("Backup__RunRetention must be at least one day (e.g. 400.00:00:00), or 00:00:00 to keep run records forever.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>A drill needs a schedule that parses and a target that is no configured source graph (a drill overwrites its target).</summary>
    private static void CheckDrill(BackupOptions options, int i, List<string> failures)
    {
        var graph = options.Graphs[i];
        if (graph.Drill is not { } drill)
        {
            return;
        }

        var prefix = $"Backup__Graphs__{i}__Drill__";
        if (string.IsNullOrWhiteSpace(drill.Schedule))
        {
            if (!string.IsNullOrWhiteSpace(drill.TargetGraphId) || drill.Threshold is not null || drill.RestoreTarget is not null)
            {
                failures.Add($"{prefix}Schedule is required when {prefix}TargetGraphId, {prefix}Threshold or {prefix}RestoreTarget is set (NCRONTAB, e.g. 0 0 4 * * 0).");
            }

            return;
        }

        try
        {
            ScheduleBackupsHandler.Parse(drill.Schedule);
        }
        catch (Exception ex) when (ex is NCrontab.CrontabException or FormatException or ArgumentException)
        {
            failures.Add($"{prefix}Schedule '{drill.Schedule}' is not an NCRONTAB expression (six fields with seconds, or five): {ex.Message}");
        }

        if (string.IsNullOrWhiteSpace(drill.TargetGraphId))
        {
            failures.Add($"{prefix}TargetGraphId is required when {prefix}Schedule is set: the GES graph each drill imports into (and overwrites).");
        }
        else if (!HuaweiCloudIds.IsValidId(drill.TargetGraphId))
        {
            failures.Add($"{prefix}TargetGraphId must be a GES graph id (letters, digits, '-', '_', '.', '~').");
        }
        else if (drill.TargetGraphId == graph.GraphId)
        {
            failures.Add($"{prefix}TargetGraphId is the graph itself: a drill overwrites its target, so it must be another graph.");
        }
        else if (options.Graphs.FindIndex(g => g.GraphId == drill.TargetGraphId) is var source and >= 0)
        {
            failures.Add($"{prefix}TargetGraphId is a graph BackupRelay backs up (Backup__Graphs__{source}__GraphId): a drill overwrites its target, so it must be a graph kept for drills.");
        }

        if (drill.Threshold is { } threshold && threshold <= TimeSpan.Zero)
        {
            failures.Add($"{prefix}Threshold must be longer than zero.");
        }

        if (drill.RestoreTarget is { } target && target <= TimeSpan.Zero)
        {
            failures.Add($"{prefix}RestoreTarget must be longer than zero (the longest a restore may take, e.g. 02:00:00).");
        }
    }
}

public sealed class DestinationOptionsValidator : IValidateOptions<DestinationOptions>
{
    public ValidateOptionsResult Validate(string? name, DestinationOptions options)
    {
        if (options.LocalDirectory is { Length: > 0 })
        {
            return ValidateOptionsResult.Success;
        }

        return StorageNames.IsValid(options.Container)
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail("Destination__Container must be 3-63 lower-case letters, digits and single dashes.");
    }
}

/// <summary>The copy engine's ranges, worded with the setting's name (<c>Copy__MaxConcurrency must be between 1 and 64.</c>).</summary>
public sealed class CopyOptionsValidator : IValidateOptions<Copying.CopyOptions>
{
    public ValidateOptionsResult Validate(string? name, Copying.CopyOptions options)
    {
        var failures = new List<string>();
        SettingAnnotations.Validate(options, Copying.CopyOptions.SectionName + "__", failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>
/// <c>Backup__QuietRunLimit</c> against host.json as the runtime applies it: a run may be failed as quiet only once no
/// delivery of its message can still be coming (every allowed delivery run to <c>functionTimeout</c>, with the
/// visibility timeout between them, and the longest wait between two polls).
/// </summary>
public sealed class QuietRunLimitValidator(Hosting.HostJson hostJson) : IValidateOptions<BackupOptions>
{
    public ValidateOptionsResult Validate(string? name, BackupOptions options)
    {
        var least = MinimumFor(hostJson, options);
        return options.QuietRunLimit >= least
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"Backup__QuietRunLimit must be at least {least:c}: host.json's maxDequeueCount ({hostJson.MaxDequeueCount}) × " +
                $"(functionTimeout {hostJson.FunctionTimeout:c} + visibilityTimeout {hostJson.VisibilityTimeout:c}) + Backup__PollMaxDelay ({options.PollMaxDelay:c}); " +
                "a shorter limit could fail a run whose message is still being delivered.");
    }

    /// <summary>The longest a run's record can stay unchanged while one of its messages may still be delivered.</summary>
    public static TimeSpan MinimumFor(Hosting.HostJson hostJson, BackupOptions options) =>
        (hostJson.MaxDequeueCount * (hostJson.FunctionTimeout + hostJson.VisibilityTimeout)) + options.PollMaxDelay;
}
