using System.Diagnostics;
using System.Text.RegularExpressions;

namespace BackupRelay.Tests.Integration;

/// <summary>
/// One real Azurite (the pinned npm package) for the whole test run: in-memory, on free loopback
/// ports read from its start-up output, stopped when the test process exits.
/// </summary>
public sealed partial class Azurite : IAsyncDisposable
{
    private static readonly Lazy<Task<Azurite>> Shared = new(StartAsync);
    private readonly Process _process;

    private Azurite(Process process, int blobPort, int queuePort)
    {
        _process = process;
        BlobPort = blobPort;
        QueuePort = queuePort;
    }

    public int BlobPort { get; }
    public int QueuePort { get; }

    public string ConnectionString =>
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
        $"AccountKey={BackupRelay.Storage.StorageConnection.DevelopmentAccountKey};" +
        $"BlobEndpoint=http://127.0.0.1:{BlobPort}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{QueuePort}/devstoreaccount1;";

    public static Task<Azurite> InstanceAsync() => Shared.Value;

    /// <summary>A private Azurite for a test that needs the well-known queue names to itself.</summary>
    public static Task<Azurite> StartNewAsync() => StartAsync();

    /// <summary>
    /// An Azurite keeping its data in <paramref name="location"/>, on the given ports (0: free ones), so a
    /// test can stop it and start it again on the same data and endpoints — a storage outage.
    /// </summary>
    public static Task<Azurite> StartOnDiskAsync(string location, int blobPort = 0, int queuePort = 0) => StartAsync(location, blobPort, queuePort);

    /// <summary>Stops Azurite the way an operator would (SIGTERM), so a disk-backed one saves its data first.</summary>
    public async Task StopAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(limit.Token);
    }

    public ValueTask DisposeAsync()
    {
        NodeServer.Kill(_process);
        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    public static string RepositoryRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Functions.sln")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("Functions.sln not found above the test binaries.");
        }

        return dir;
    }

    private static Task<Azurite> StartAsync() => StartAsync(null, 0, 0);

    private static async Task<Azurite> StartAsync(string? location, int blobPort, int queuePort)
    {
        var script = Path.Combine(RepositoryRoot(), "node_modules", "azurite", "dist", "src", "azurite.js");
        if (!File.Exists(script))
        {
            throw new InvalidOperationException($"Azurite is not installed ({script}): run 'npm ci' at the repository root (build/test.sh does).");
        }

        var workspace = Directory.CreateTempSubdirectory("backuprelay-azurite-");
        string[] persistence = location is null ? ["--inMemoryPersistence", "--extentMemoryLimit", "4096"] : ["--location", location];
        var process = NodeServer.Start(script, workspace.FullName, new[]
        {
            "--silent", "--disableTelemetry",
            "--blobHost", "127.0.0.1", "--blobPort", blobPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--queueHost", "127.0.0.1", "--queuePort", queuePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--tableHost", "127.0.0.1", "--tablePort", "0",
        }.Concat(persistence));

        int? blob = null, queue = null;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while ((blob is null || queue is null) && await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            var match = Listening().Match(line);
            if (match.Success)
            {
                var port = int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
                if (match.Groups[1].Value == "Blob")
                {
                    blob = port;
                }
                else if (match.Groups[1].Value == "Queue")
                {
                    queue = port;
                }
            }
        }

        if (blob is null || queue is null)
        {
            throw new InvalidOperationException("Azurite did not start: " + await process.StandardError.ReadToEndAsync());
        }

        NodeServer.Drain(process);
        return new Azurite(process, blob.Value, queue.Value);
    }

    [GeneratedRegex(@"Azurite (Blob|Queue) service is successfully listening at http://[^:]+:(\d+)")]
    private static partial Regex Listening();
}
