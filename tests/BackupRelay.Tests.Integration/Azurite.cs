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

    private readonly TcpGate[] _gates;

    private Azurite(Process process, int blobPort, int queuePort, bool gated = false)
    {
        _process = process;
        _gates = gated ? [TcpGate.Open(blobPort), TcpGate.Open(queuePort)] : [];
        BlobPort = gated ? _gates[0].Port : blobPort;
        QueuePort = gated ? _gates[1].Port : queuePort;
    }

    /// <summary>The ports clients use (the gates' when <see cref="StartBehindGatesAsync"/> started it).</summary>
    public int BlobPort { get; }
    public int QueuePort { get; }

    /// <summary>
    /// A private, in-memory Azurite reached through <see cref="TcpGate"/>s, so a test can take storage away
    /// (<see cref="CutOff"/>) and bring it back (<see cref="Restore"/>) on the same endpoints and data.
    /// </summary>
    public static async Task<Azurite> StartBehindGatesAsync()
    {
        var inner = await StartAsync();
        return new Azurite(inner._process, inner.BlobPort, inner.QueuePort, gated: true);
    }

    /// <summary>Storage goes away: open connections reset, new ones refused.</summary>
    public void CutOff()
    {
        foreach (var gate in _gates)
        {
            gate.Shut();
        }
    }

    /// <summary>Storage hangs: every request, open or new, waits without an answer until <see cref="Thaw"/>.</summary>
    public void Freeze()
    {
        foreach (var gate in _gates)
        {
            gate.Freeze();
        }
    }

    /// <summary>A hung storage account answers again.</summary>
    public void Thaw()
    {
        foreach (var gate in _gates)
        {
            gate.Thaw();
        }
    }

    /// <summary>Storage is back, with everything it had acknowledged.</summary>
    public void Restore()
    {
        foreach (var gate in _gates)
        {
            gate.Reopen();
        }
    }

    public string ConnectionString =>
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
        $"AccountKey={BackupRelay.Storage.StorageConnection.DevelopmentAccountKey};" +
        $"BlobEndpoint=http://127.0.0.1:{BlobPort}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{QueuePort}/devstoreaccount1;";

    public static Task<Azurite> InstanceAsync() => Shared.Value;

    /// <summary>A private Azurite for a test that needs the well-known queue names to itself.</summary>
    public static Task<Azurite> StartNewAsync() => StartAsync();

    public ValueTask DisposeAsync()
    {
        foreach (var gate in _gates)
        {
            gate.Dispose();
        }

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

    private static async Task<Azurite> StartAsync()
    {
        var script = Path.Combine(RepositoryRoot(), "node_modules", "azurite", "dist", "src", "azurite.js");
        if (!File.Exists(script))
        {
            throw new InvalidOperationException($"Azurite is not installed ({script}): run 'npm ci' at the repository root (build/test.sh does).");
        }

        var workspace = Directory.CreateTempSubdirectory("backuprelay-azurite-");
        var process = NodeServer.Start(script, workspace.FullName, new[]
        {
            "--silent", "--disableTelemetry",
            "--blobHost", "127.0.0.1", "--blobPort", "0",
            "--queueHost", "127.0.0.1", "--queuePort", "0",
            "--tableHost", "127.0.0.1", "--tablePort", "0",
            "--inMemoryPersistence", "--extentMemoryLimit", "4096",
        });

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
