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
            var path = Path.Combine(Root, folder.Groups[1].Value);
            Assert.True(Directory.Exists(path) || File.Exists(path), $"{folder.Groups[1].Value} does not exist");
        }
    }

    [Fact]
    public void Every_place_the_where_is_section_names_holds_its_type()
    {
        var section = Document[Document.IndexOf("## Where is", StringComparison.Ordinal)..Document.IndexOf("## Where each concern lives", StringComparison.Ordinal)];
        var places = TypeInFile().Matches(section).ToList();
        Assert.True(places.Count >= 15, $"only {places.Count} places named");
        foreach (Match place in places)
        {
            var (type, file) = (place.Groups[1].Value, place.Groups[2].Value);
            var path = Path.Combine(Root, file);
            Assert.True(File.Exists(path), $"{file} (named for {type}) does not exist");
            Assert.Matches($@"\b(class|record|interface|struct|enum)\s+{type}\b", File.ReadAllText(path));
        }

        // Each behaviour the map promises to answer has its row.
        foreach (var behaviour in new[] { "multipart ETag", "resumes after a crash", "a drill's pass or fail", "what a copy proves", "host.json" })
        {
            Assert.Contains(behaviour, section, StringComparison.Ordinal);
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

    /// <summary>"`Type` (`src/….cs`)": a type and the file that declares it.</summary>
    [GeneratedRegex(@"`(\w+)` \(`(src/[\w/.]+\.cs)`")]
    private static partial Regex TypeInFile();

    [GeneratedRegex(@"`(src/[\w/.]+)`")]
    private static partial Regex Folder();
}
