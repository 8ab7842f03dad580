using System.Collections;
using System.ComponentModel;
using System.Reflection;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud;
using BackupRelay.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BackupRelay.Configuration;

/// <summary>
/// Every configuration problem at once, one line each, naming the setting as a user writes it
/// (<c>Copy__MaxConcurrency</c>) and what is expected — checked before anything starts, so a bad
/// setting ends start-up with <see cref="ExitCode"/> and no stack trace.
/// </summary>
public static class ConfigurationCheck
{
    /// <summary>The process exit code for a configuration the app cannot start with (documented in docs/configuration.md).</summary>
    public const int ExitCode = 3;

    /// <summary>The settings sections and the options type each binds to.</summary>
    private static readonly (string Section, Type Options)[] Sections =
    [
        (BackupOptions.SectionName, typeof(BackupOptions)),
        (DestinationOptions.SectionName, typeof(DestinationOptions)),
        (CopyOptions.SectionName, typeof(CopyOptions)),
        (Http.HttpOptions.SectionName, typeof(Http.HttpOptions)),
        (HuaweiCloudOptions.SectionName, typeof(HuaweiCloudOptions)),
        (Notifications.NotifyOptions.SectionName, typeof(Notifications.NotifyOptions)),
        (Restores.ObsOptions.SectionName, typeof(Restores.ObsOptions)),
    ];

    public static IReadOnlyList<string> Problems(IServiceProvider services, IConfiguration configuration)
    {
        var problems = new List<string>();
        foreach (var (section, type) in Sections)
        {
            // The binder stops at the first value it cannot convert: read every value first, then
            // bind without the bad ones so the validators report everything else too.
            var conversions = new List<(string Problem, string Key)>();
            // A section's own settings, plus a connection's identity-based ones where the section is a connection too.
            var alsoKnown = section == DestinationOptions.SectionName ? StorageConnection.IdentityKeys : [];
            Conversions(configuration.GetSection(section), type, section, conversions, alsoKnown);
            problems.AddRange(conversions.Select(c => c.Problem));
            var bad = conversions.Select(c => c.Key).ToHashSet(StringComparer.OrdinalIgnoreCase);
            var readable = conversions.Count == 0 ? configuration : new ConfigurationBuilder()
                .AddInMemoryCollection(configuration.AsEnumerable().Where(setting => !bad.Contains(setting.Key)))
                .Build();
            var options = Activator.CreateInstance(type)!;
            readable.GetSection(section).Bind(options);
            foreach (var validator in services.GetServices(typeof(IValidateOptions<>).MakeGenericType(type)))
            {
                var result = (ValidateOptionsResult)validator!.GetType().GetMethod(nameof(IValidateOptions<object>.Validate))!
                    .Invoke(validator, [Options.DefaultName, options])!;
                if (result.Failed)
                {
                    problems.AddRange(result.Failures ?? [result.FailureMessage]);
                }
            }
        }

        // App Service leaves a Key Vault reference it could not resolve as the literal text: used as a
        // password it would lock the Huawei account after repeated failures, as a webhook secret it is guessable.
        foreach (var (key, value) in configuration.AsEnumerable())
        {
            if (value is not null && value.TrimStart().StartsWith("@Microsoft.KeyVault(", StringComparison.OrdinalIgnoreCase))
            {
                problems.Add($"{key.Replace(":", "__", StringComparison.Ordinal)} is a Key Vault reference that was not resolved: " +
                    "give the app's identity read access to the secret (Key Vault Secrets User) and check the reference's vault and secret name.");
            }
        }

        Storage(configuration, BackupRelayServiceCollectionExtensions.AppStorageSetting, problems);
        var destination = configuration.GetSection(DestinationOptions.SectionName);
        if (string.IsNullOrEmpty(destination[nameof(DestinationOptions.LocalDirectory)]))
        {
            Storage(configuration, destination[nameof(DestinationOptions.Connection)] ?? DestinationOptions.SectionName, problems);
        }

        return problems;
    }

    private static void Storage(IConfiguration configuration, string setting, List<string> problems)
    {
        try
        {
            StorageConnection.FromConfiguration(configuration, setting);
        }
        catch (StorageConfigurationException ex)
        {
            problems.Add(ex.Message);
        }
    }

    /// <summary>Settings earlier versions read, and why they are gone (set, they stop start-up rather than being ignored).</summary>
    private static readonly (string Setting, string Why)[] Retired =
    [
        ("Copy__Spool", "every streamed copy into Blob now lands in a spool file (Copy__SpoolDirectory); remove the setting"),
    ];

    /// <summary>Values that cannot become their property's type, found the way the binder converts them (TypeConverter, invariant culture).</summary>
    private static void Conversions(IConfigurationSection section, Type type, string path, List<(string Problem, string Key)> problems,
        IReadOnlyList<string>? alsoKnown = null)
    {
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0).ToList();

        // A misspelt setting would be ignored by the binder, silently: name it, with the closest real one.
        var known = properties.Select(p => p.Name).Concat(alsoKnown ?? []).ToList();
        foreach (var child in section.GetChildren())
        {
            if (Retired.FirstOrDefault(r => string.Equals(r.Setting, $"{path}__{child.Key}", StringComparison.OrdinalIgnoreCase)) is { Why: { } why })
            {
                problems.Add(($"{path}__{child.Key} was retired: {why}", child.Path));
            }
            else if (!known.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
            {
                var closest = known.MinBy(k => Distance(k.ToUpperInvariant(), child.Key.ToUpperInvariant()));
                var hint = closest is not null && Distance(closest.ToUpperInvariant(), child.Key.ToUpperInvariant()) <= Math.Max(2, child.Key.Length / 3)
                    ? $"did you mean {path}__{closest}?"
                    : $"the settings under {path}__ are {string.Join(", ", known)}.";
                problems.Add(($"{path}__{child.Key} is not a setting: {hint}", child.Path));
            }
        }

        foreach (var property in properties)
        {
            var child = section.GetSection(property.Name);
            var target = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            var name = $"{path}__{property.Name}";
            if (Expected(target) is { } expected)
            {
                if (child.Value is { Length: > 0 } value && !Converts(target, value))
                {
                    // The range too, where the setting has one: what to write instead, not only what is wrong.
                    var range = property.GetCustomAttribute<System.ComponentModel.DataAnnotations.RangeAttribute>() is { } r
                        ? $" between {r.Minimum} and {r.Maximum}"
                        : "";
                    problems.Add(($"{name} is '{value}', which is not {expected}{range}.", child.Path));
                }
            }
            else if (target != typeof(string) && property.CanWrite && typeof(IEnumerable).IsAssignableFrom(target) && target.IsGenericType)
            {
                var element = target.GetGenericArguments()[0];
                foreach (var item in child.GetChildren())
                {
                    if (Expected(element) is { } itemExpected)
                    {
                        if (item.Value is { Length: > 0 } value && !Converts(element, value))
                        {
                            problems.Add(($"{name}__{item.Key} is '{value}', which is not {itemExpected}.", item.Path));
                        }
                    }
                    else if (element.IsClass && element != typeof(string))
                    {
                        Conversions(item, element, $"{name}__{item.Key}", problems);
                    }
                }
            }
            else if (target.IsClass && target != typeof(string) && property.GetMethod is not null && property.SetMethod is not null)
            {
                Conversions(child, target, name, problems);
            }
        }
    }

    /// <summary>Edits (insert, delete, replace, swap two neighbours) from one name to another.</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }

    private static bool Converts(Type type, string value)
    {
        try
        {
            TypeDescriptor.GetConverter(type).ConvertFromInvariantString(value);
            return true;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or OverflowException or NotSupportedException or UriFormatException)
        {
            return false;
        }
    }

    private static string? Expected(Type type) =>
        type == typeof(TimeSpan) ? "a time span as [d.]hh:mm[:ss] (e.g. 06:00:00 for six hours, 1.00:00:00 for a day)"
        : type == typeof(int) || type == typeof(long) ? "a whole number"
        : type == typeof(double) ? "a number (e.g. 0.5)"
        : type == typeof(bool) ? "true or false"
        : type == typeof(Uri) ? "a URL"
        : type.IsEnum ? "one of " + string.Join(", ", Enum.GetNames(type))
        : null;
}
