using BackupRelay.Configuration;
using BackupRelay.Copying;

namespace BackupRelay.Tests.Unit;

/// <summary>Names from outside reach destination paths only through <see cref="CopyPaths"/>, which cannot leave its container.</summary>
public sealed class CopyPathsTests
{
    public static TheoryData<string> Unsafe() =>
    [
        "..", ".", "../victim", "../../evil-container/x", "a/b", "a\\b", "/abs", "C:\\x", "x\n", "x\0y", "\u00e9t\u00e9", "-leading", ".hidden",
        new string('a', 129), "", " ", "a b",
    ];

    [Theory]
    [MemberData(nameof(Unsafe))]
    public void An_unsafe_name_is_refused_as_a_backup_id_or_file_and_a_ges_graph_name_falls_back_to_the_graph_id(string name)
    {
        Assert.False(CopyPaths.IsSafeSegment(name));
        Assert.Throws<ArgumentException>(() => CopyPaths.File("orders", name, "a.tar"));
        Assert.Throws<ArgumentException>(() => CopyPaths.File("orders", "b-1", name));
        if (!name.Contains('/', StringComparison.Ordinal))
        {
            // A name with a slash makes other segments, each checked on its own (the mapping above refuses it whole).
            Assert.Throws<ArgumentException>(() => CopyPaths.Checked($"orders/{name}/a.tar"));
        }
        Assert.Equal("g-1", CopyPaths.Folder(new BackupOptions(), "g-1", name));
    }

    [Fact]
    public void Safe_names_map_one_to_one_and_a_configured_folder_wins()
    {
        Assert.Equal("orders/b-1.x/file_0~1.tar", CopyPaths.File("orders", "b-1.x", "file_0~1.tar"));
        Assert.Equal("orders", CopyPaths.Folder(new BackupOptions(), "g-1", "orders"));
        var options = new BackupOptions();
        options.Graphs.Add(new GraphOptions { GraphId = "g-1", Name = "configured" });
        Assert.Equal("configured", CopyPaths.Folder(options, "g-1", "../victim"));
        Assert.Equal(".backuprelay/write-check", CopyPaths.Checked(".backuprelay/write-check"));
        Assert.Throws<ArgumentException>(() => CopyPaths.Checked("orders/.backuprelay/x"));
    }

    [Fact]
    public void The_local_directory_refuses_a_path_that_would_leave_it()
    {
        var root = Directory.CreateTempSubdirectory().FullName;
        var local = new LocalDirectoryCopyDestination(root);
        Assert.Throws<ArgumentException>(() => local.FullPath("../outside/x"));
        Assert.StartsWith(root, local.FullPath("orders/b-1/a.tar"), StringComparison.Ordinal);
    }
}
