using System.Reflection;
using System.Text.RegularExpressions;
using BackupRelay.Configuration;
using BackupRelay.Runs;

namespace BackupRelay.Tests.Unit;

/// <summary>docs/architecture.md names only what exists: every function (and all of them), every queue, run status and folder.</summary>
public sealed partial class ArchitectureDocumentTests
{
    private static readonly string Root = FindRoot();
    private static readonly string Document = File.ReadAllText(Path.Combine(Root, "docs", "architecture.md"));

    private static string FindRoot()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Functions.sln")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        return root;
    }

    /// <summary>The [Function("…")] names in the Functions app's source (constants resolved through FunctionNames).</summary>
    private static SortedSet<string> Functions()
    {
        var constants = typeof(Messaging.FunctionNames).GetFields(BindingFlags.Public | BindingFlags.Static)
            .ToDictionary(f => "FunctionNames." + f.Name, f => (string)f.GetRawConstantValue()!);
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "src", "BackupRelay.Functions"), "*.cs", SearchOption.AllDirectories))
        {
            foreach (Match m in FunctionAttribute().Matches(File.ReadAllText(file)))
            {
                names.Add(m.Groups[1].Success ? m.Groups[1].Value : constants[m.Groups[2].Value]);
            }
        }

        return names;
    }

    [Fact]
    public void Every_function_in_the_app_is_on_the_map_and_nothing_else()
    {
        var rows = FunctionRow().Matches(Document).ToList();
        Assert.Equal(Functions(), new SortedSet<string>(rows.Select(r => r.Groups[1].Value), StringComparer.Ordinal));
        Assert.True(Functions().Count >= 17);

        var queues = typeof(QueueNames).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (string)f.GetRawConstantValue()!).ToHashSet();
        foreach (var row in rows)
        {
            if (row.Groups[3].Value != "—")
            {
                Assert.Contains(row.Groups[3].Value.Trim('`'), queues);
            }

            Assert.True(Directory.Exists(Path.Combine(Root, row.Groups[4].Value)), $"{row.Groups[1].Value}'s home {row.Groups[4].Value} does not exist");
        }
    }

    [Fact]
    public void Every_queue_status_and_folder_named_exists()
    {
        var queues = typeof(QueueNames).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (string)f.GetRawConstantValue()!)
            .Where(q => q != QueueNames.RunsContainer).ToList();
        Assert.All(queues, q => Assert.Contains($"`{q}`", Document, StringComparison.Ordinal));
        Assert.All(Enum.GetNames<RunStatus>(), s => Assert.Contains($"`{s}`", Document, StringComparison.Ordinal));
        foreach (Match folder in Folder().Matches(Document))
        {
            Assert.True(Directory.Exists(Path.Combine(Root, folder.Groups[1].Value)), $"{folder.Groups[1].Value} does not exist");
        }
    }

    [Fact]
    public void Every_step_and_kind_is_on_the_map_and_the_run_types_it_names_exist()
    {
        Assert.All(Enum.GetValues<RunStep>(), s => Assert.Contains($"`{s.Name()}`", Document, StringComparison.Ordinal));
        Assert.All(Enum.GetValues<RunKind>(), k => Assert.Contains($"`{k.Name()}`", Document, StringComparison.Ordinal));
        var runTypes = new[] { typeof(RunRecord).Assembly, typeof(RunStore).Assembly }.SelectMany(a => a.GetTypes()).Where(t => t.Namespace == typeof(RunRecord).Namespace).Select(t => t.Name).ToHashSet();
        foreach (var named in new[] { "NumberedPolls", "SubmitOnce", "IRunRecords", "CopyClaims", "RunHousekeeping", "RunRecord", "RunFile" })
        {
            Assert.Contains($"`{named}`", Document, StringComparison.Ordinal);
            Assert.Contains(named, runTypes);
        }

        foreach (var method in new[] { "Fail", "Succeed", "CountPoll", "RecordJob", "RecordBackup", "Follow", "EndAs", "StartCopying", "FailFile", "FinishByFiles" })
        {
            Assert.NotEmpty(typeof(RunRecord).GetMember(method));
        }

        foreach (var method in new[] { "Progress", "Complete", "CopyAgain" })
        {
            Assert.NotEmpty(typeof(RunFile).GetMember(method));
        }
    }

    [GeneratedRegex(@"\[Function\((?:""(\w+)""|(FunctionNames\.\w+))\)\]")]
    private static partial Regex FunctionAttribute();

    [GeneratedRegex(@"^\| `(\w+)` \| (timer|queue|HTTP) \| (`[\w-]+`|—) \| `([\w/.]+)` \|", RegexOptions.Multiline)]
    private static partial Regex FunctionRow();

    [GeneratedRegex(@"`(src/[\w/.]+)`")]
    private static partial Regex Folder();
}
