using System.Collections;
using System.Reflection;
using System.Text.RegularExpressions;
using BackupRelay.Configuration;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud;
using BackupRelay.Http;

namespace BackupRelay.Tests.Unit;

/// <summary>Code, the configuration reference (docs/configuration.md), local.settings.json.sample and the Bicep app settings agree.</summary>
public sealed partial class SettingsDocumentationTests
{
    /// <summary>Settings read outside options classes (connections) or set by the platform.</summary>
    private static readonly string[] Connections = ["AzureWebJobsStorage", "Destination"];

    private static readonly string Root = FindRoot();

    /// <summary>Every app setting the code binds, in <c>__</c> form; lists as <c>__N</c>.</summary>
    public static SortedSet<string> CodeSettings()
    {
        var settings = new SortedSet<string>(StringComparer.Ordinal);
        Walk(typeof(HuaweiCloudOptions), HuaweiCloudOptions.SectionName, settings);
        Walk(typeof(BackupOptions), BackupOptions.SectionName, settings);
        Walk(typeof(DestinationOptions), DestinationOptions.SectionName, settings);
        Walk(typeof(CopyOptions), CopyOptions.SectionName, settings);
        Walk(typeof(HttpOptions), HttpOptions.SectionName, settings);
        Walk(typeof(BackupRelay.Notifications.NotifyOptions), BackupRelay.Notifications.NotifyOptions.SectionName, settings);
        Walk(typeof(BackupRelay.Restores.ObsOptions), BackupRelay.Restores.ObsOptions.SectionName, settings);
        return settings;
    }

    private static void Walk(Type type, string prefix, SortedSet<string> settings)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.SetMethod!.IsPublic))
        {
            var name = $"{prefix}__{property.Name}";
            var t = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (t == typeof(string) || t.IsPrimitive || t.IsEnum || t == typeof(TimeSpan) || t == typeof(Uri) || t == typeof(decimal))
            {
                settings.Add(name);
            }
            else if (t.IsGenericType && typeof(IEnumerable).IsAssignableFrom(t))
            {
                var item = t.GetGenericArguments()[0];
                if (item == typeof(string) || item.IsPrimitive)
                {
                    settings.Add(name + "__N");
                }
                else
                {
                    Walk(item, name + "__N", settings);
                }
            }
            else
            {
                Walk(t, name, settings);
            }
        }
    }

    /// <summary>Setting names in README's configuration table, with <c>`A__B` / `__C`</c> shorthand expanded.</summary>
    private static SortedSet<string> ReadmeSettings()
    {
        var section = ConfigurationTable();
        var settings = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var line in section.Split('\n').Where(l => l.StartsWith("| `", StringComparison.Ordinal)))
        {
            var cell = line.Split('|')[1];
            string? prefix = null;
            foreach (Match m in Backticked().Matches(cell))
            {
                var value = m.Groups[1].Value;
                if (value.StartsWith("__", StringComparison.Ordinal) && prefix is not null)
                {
                    settings.Add(prefix + value);
                }
                else
                {
                    settings.Add(value);
                    prefix = value.Contains("__", StringComparison.Ordinal) ? value[..value.LastIndexOf("__", StringComparison.Ordinal)] : value;
                }
            }
        }

        return settings;
    }

    /// <summary>The settings reference: <c>docs/configuration.md</c> from its "## Configuration" heading to the next one.</summary>
    private static string ConfigurationTable()
    {
        var doc = File.ReadAllText(Path.Combine(Root, "docs", "configuration.md"));
        var section = doc[doc.IndexOf("## Configuration", StringComparison.Ordinal)..];
        var end = section.IndexOf("\n## ", 3, StringComparison.Ordinal);
        return end < 0 ? section : section[..end];
    }

    [Fact]
    public void Every_setting_the_code_reads_is_in_the_readme_table_and_nothing_else_is()
    {
        var code = CodeSettings();
        var readme = ReadmeSettings();
        readme.RemoveWhere(s => Connections.Contains(s) || s.StartsWith("AzureWebJobsStorage__", StringComparison.Ordinal) || s.StartsWith("Destination__blobServiceUri", StringComparison.Ordinal));
        Assert.Equal([], code.Except(readme).ToList());
        Assert.Equal([], readme.Except(code).ToList());
    }

    /// <summary>The code's default of every setting: options classes instantiated, list items from a fresh item.</summary>
    private static Dictionary<string, (Type Type, object? Value)> CodeDefaults()
    {
        var defaults = new Dictionary<string, (Type, object?)>(StringComparer.Ordinal);
        Defaults(new HuaweiCloudOptions(), HuaweiCloudOptions.SectionName, defaults);
        Defaults(new BackupOptions(), BackupOptions.SectionName, defaults);
        Defaults(new DestinationOptions(), DestinationOptions.SectionName, defaults);
        Defaults(new CopyOptions(), CopyOptions.SectionName, defaults);
        Defaults(new HttpOptions(), HttpOptions.SectionName, defaults);
        Defaults(new BackupRelay.Notifications.NotifyOptions(), BackupRelay.Notifications.NotifyOptions.SectionName, defaults);
        Defaults(new BackupRelay.Restores.ObsOptions(), BackupRelay.Restores.ObsOptions.SectionName, defaults);
        return defaults;
    }

    private static void Defaults(object instance, string prefix, Dictionary<string, (Type, object?)> defaults)
    {
        foreach (var property in instance.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.SetMethod!.IsPublic))
        {
            var name = $"{prefix}__{property.Name}";
            var t = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            var value = property.GetValue(instance);
            if (t == typeof(string) || t.IsPrimitive || t.IsEnum || t == typeof(TimeSpan) || t == typeof(Uri))
            {
                defaults[name] = (t, value);
            }
            else if (t.IsGenericType && typeof(IEnumerable).IsAssignableFrom(t))
            {
                var item = t.GetGenericArguments()[0];
                if (item != typeof(string) && !item.IsPrimitive)
                {
                    Defaults(Activator.CreateInstance(item)!, name + "__N", defaults);
                }
            }
            else if (value is not null)
            {
                Defaults(value, name, defaults);
            }
        }
    }

    /// <summary>README rows as (settings, default cell), with <c>`A__B` / `__C`</c> shorthand expanded in order.</summary>
    private static List<(List<string> Settings, string Default)> ReadmeRows()
    {
        var section = ConfigurationTable();
        var rows = new List<(List<string>, string)>();
        foreach (var line in section.Split('\n').Where(l => l.StartsWith("| `", StringComparison.Ordinal)))
        {
            var cells = line.Split('|');
            var settings = new List<string>();
            string? prefix = null;
            foreach (var value in cells[1].Split(" / ").Select(part => Backticked().Match(part)).Where(m => m.Success).Select(m => m.Groups[1].Value))
            {
                if (value.StartsWith("__", StringComparison.Ordinal) && prefix is not null)
                {
                    settings.Add(prefix + value);
                }
                else
                {
                    settings.Add(value);
                    prefix = value.Contains("__", StringComparison.Ordinal) ? value[..value.LastIndexOf("__", StringComparison.Ordinal)] : value;
                }
            }

            rows.Add((settings, cells[3].Trim()));
        }

        return rows;
    }

    [Fact]
    public void Documented_defaults_are_the_code_defaults()
    {
        var defaults = CodeDefaults();
        var wrong = new List<string>();
        foreach (var (settings, cell) in ReadmeRows())
        {
            if (cell.StartsWith("required", StringComparison.Ordinal) || cell is "—" or "not set" or "not sent")
            {
                // Nothing to fall back on: the code's default must be empty too.
                foreach (var setting in settings.Where(defaults.ContainsKey))
                {
                    var (type, value) = defaults[setting];
                    if (value is not null && !(value is string text && text.Length == 0) && !(type == typeof(bool) && value is false))
                    {
                        wrong.Add($"{setting}: README says '{cell}', the code defaults to '{value}'");
                    }
                }

                continue;
            }

            // "`4` / `00:00:01` / `00:00:30`": one value per setting, in order; prose cells are described, not compared.
            var documented = cell.Split(" (")[0].Split(" / ").Select(v => Backticked().Match(v.Trim())).ToList();
            if (documented.Count != settings.Count || !documented.All(m => m.Success && m.Index == 0 && m.Length == m.Value.Length)
                || documented.Any(m => m.Groups[1].Value.Contains("__", StringComparison.Ordinal)))
            {
                documented = [.. cell.Split(" / ").Select(v => ValueCell().Match(v.Trim()))];
            }

            for (var i = 0; i < settings.Count; i++)
            {
                if (!defaults.TryGetValue(settings[i], out var code))
                {
                    continue;
                }

                if (i >= documented.Count || !documented[i].Success || documented[i].Groups[1].Value.Contains("__", StringComparison.Ordinal))
                {
                    // A default told in words ("twice the schedule's interval", "the graph's GES name", "`Backup__JobDeadline`")
                    // is one the code computes: its property must have no fixed value to contradict the words.
                    if (code.Value is not null && !(code.Value is string empty && empty.Length == 0))
                    {
                        wrong.Add($"{settings[i]}: README describes its default as '{cell}', but the code defaults to '{Format(code.Value)}': write the value");
                    }

                    continue;
                }

                var text = documented[i].Groups[1].Value;
                object? parsed;
                try
                {
                    parsed = System.ComponentModel.TypeDescriptor.GetConverter(code.Type).ConvertFromInvariantString(text);
                }
                catch (Exception ex) when (ex is FormatException or ArgumentException or NotSupportedException)
                {
                    wrong.Add($"{settings[i]}: README's default '{text}' is not a {code.Type.Name}");
                    continue;
                }

                if (!Equals(parsed, code.Value))
                {
                    wrong.Add($"{settings[i]}: README says '{text}', the code defaults to '{code.Value}'");
                }
            }
        }

        Assert.Equal([], wrong);
    }

    private static string Format(object value) => value switch
    {
        TimeSpan t => t.ToString("c", System.Globalization.CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    [Fact]
    public void Connections_are_documented_as_required()
    {
        var rows = ReadmeRows();
        Assert.StartsWith("required", rows.Single(r => r.Settings.FirstOrDefault() == "AzureWebJobsStorage").Default, StringComparison.Ordinal);
        Assert.StartsWith("required", rows.Single(r => r.Settings.FirstOrDefault() == "Destination").Default, StringComparison.Ordinal);
    }

    [Fact]
    public void The_sample_settings_list_every_setting()
    {
        var sample = File.ReadAllText(Path.Combine(Root, "local.settings.json.sample"));
        using var document = System.Text.Json.JsonDocument.Parse(sample, new System.Text.Json.JsonDocumentOptions { CommentHandling = System.Text.Json.JsonCommentHandling.Skip });
        var keys = document.RootElement.GetProperty("Values").EnumerateObject()
            .Select(p => NumberedIndex().Replace(p.Name, "__N")).ToHashSet(StringComparer.Ordinal);
        Assert.Equal([], CodeSettings().Where(s => !keys.Contains(s)).ToList());
        Assert.All(Connections, c => Assert.Contains(c, keys));
        Assert.Equal([], keys.Where(k => k != "FUNCTIONS_WORKER_RUNTIME" && !Connections.Contains(k) && !CodeSettings().Contains(k)).ToList());
    }

    [Fact]
    public void Bicep_sets_only_settings_the_code_reads()
    {
        var bicep = File.ReadAllText(Path.Combine(Root, "infra", "main.bicep"));
        var names = BicepSetting().Matches(bicep).Select(m => NumberedBicep().Replace(m.Groups[1].Value, "__N")).ToList();
        Assert.NotEmpty(names);
        var code = CodeSettings();
        foreach (var name in names)
        {
            Assert.True(code.Contains(name) || name.StartsWith("AzureWebJobsStorage__", StringComparison.Ordinal) || name.StartsWith("Destination__", StringComparison.Ordinal)
                || name.StartsWith("APPLICATIONINSIGHTS_", StringComparison.Ordinal)
                // Read by the Functions platform itself (Elastic Premium: runtime, extension version, package).
                || name.StartsWith("FUNCTIONS_", StringComparison.Ordinal) || name.StartsWith("WEBSITE_", StringComparison.Ordinal), $"main.bicep sets {name}, which nothing reads");
        }

        Assert.Contains("AzureWebJobsStorage__accountName", names);
        Assert.Contains("AzureWebJobsStorage__credential", names);
        Assert.DoesNotContain(names, n => n.Contains("AccountKey", StringComparison.OrdinalIgnoreCase));
        Assert.Contains("Backup__Graphs__N__GraphId", names);
    }

    [GeneratedRegex("`([A-Za-z_][A-Za-z0-9_]*)`")]
    private static partial Regex Backticked();

    [GeneratedRegex("^`([^`]+)`")]
    private static partial Regex ValueCell();

    [GeneratedRegex("__[0-9]+(?=__|$)")]
    private static partial Regex NumberedIndex();

    [GeneratedRegex(@"\{ name: '([A-Za-z_][A-Za-z0-9_${}i]*)', value:")]
    private static partial Regex BicepSetting();

    [GeneratedRegex(@"__\$\{i\}(?=__|$)")]
    private static partial Regex NumberedBicep();

    private static string FindRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Functions.sln")))
        {
            dir = Path.GetDirectoryName(dir)!;
        }

        return dir;
    }
}
