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
        try
        {
            ScheduleBackupsHandler.Parse(options.Schedule);
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
            if (!HuaweiCloudIds.IsValidId(options.Graphs[i].GraphId))
            {
                failures.Add($"Backup__Graphs__{i}__GraphId must be a GES graph id (letters, digits, '-', '_', '.', '~').");
            }

            if (options.Graphs[i].FreshnessThreshold is { } threshold && threshold <= TimeSpan.Zero)
            {
                failures.Add($"Backup__Graphs__{i}__FreshnessThreshold must be longer than zero.");
            }

            if (options.Graphs[i].Name is { } folder && (folder.Length == 0 || folder.Contains('/') || folder.Contains('\\') || folder is "." or ".."))
            {
                failures.Add($"Backup__Graphs__{i}__Name must be a single folder name.");
            }
        }

        if (options.Graphs.Select(g => g.GraphId).Distinct(StringComparer.Ordinal).Count() != options.Graphs.Count)
        {
            failures.Add("Backup__Graphs lists a graph twice.");
        }

        foreach (var (setting, value) in new[]
                 {
                     ("PollInitialDelay", options.PollInitialDelay), ("PollMaxDelay", options.PollMaxDelay), ("JobDeadline", options.JobDeadline),
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
