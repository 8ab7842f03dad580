using System.Diagnostics;
using System.Text.RegularExpressions;

namespace BackupRelay.Tests.Integration;

/// <summary>
/// Real Azurite (the pinned npm package) for the test run: in-memory, on free loopback ports read from its start-up
/// output, stopped when the test process exits. A test that needs storage to itself (the well-known queue names, an
/// empty run store) gets an account of its own on one of two shared processes (<see cref="NewAccountAsync"/>) rather
/// than a process of its own: starting Azurite costs about 1.4 s of CPU, an account nothing, and the accounts of one
/// process share nothing but its event loop.
/// </summary>
public sealed partial class Azurite : IAsyncDisposable
{
    /// <summary>Accounts each shared process declares (<c>AZURITE_ACCOUNTS</c>; the whole list stays under Linux's 128 KiB per variable).</summary>
    private const int AccountsPerProcess = 600;

    private static readonly Lazy<Task<Azurite>> Shared = new(() => StartAsync(0));
    private static readonly Lazy<Task<Azurite>>[] Pool = [new(() => StartAsync(1)), new(() => StartAsync(2))];
    private static int _accountsTaken;

    private readonly Process _process;
    private readonly bool _ownsProcess;
    private readonly TcpGate[] _gates;

    private Azurite(Process process, int blobPort, int queuePort, string accountName, bool ownsProcess, bool gated = false)
    {
        _process = process;
        _ownsProcess = ownsProcess;
        AccountName = accountName;
        _gates = gated ? [TcpGate.Open(blobPort), TcpGate.Open(queuePort)] : [];
        BlobPort = gated ? _gates[0].Port : blobPort;
        QueuePort = gated ? _gates[1].Port : queuePort;
    }

    /// <summary>The storage account this instance stands for (every account has the development key).</summary>
    public string AccountName { get; }

    /// <summary>The blob endpoint, account included (path-style, as Azurite serves it).</summary>
    public string BlobEndpoint => $"http://127.0.0.1:{BlobPort}/{AccountName}";

    /// <summary>The ports clients use (the gates' when <see cref="StartBehindGatesAsync"/> started it).</summary>
    public int BlobPort { get; }
    public int QueuePort { get; }

    /// <summary>
    /// A private, in-memory Azurite reached through <see cref="TcpGate"/>s, so a test can take storage away
    /// (<see cref="CutOff"/>) and bring it back (<see cref="Restore"/>) on the same endpoints and data.
    /// </summary>
    public static async Task<Azurite> StartBehindGatesAsync()
    {
        var (process, account) = await TakeAccountAsync();
        return new Azurite(process._process, process.BlobPort, process.QueuePort, account, ownsProcess: false, gated: true);
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
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};" +
        $"AccountKey={BackupRelay.Storage.StorageConnection.DevelopmentAccountKey};" +
        $"BlobEndpoint={BlobEndpoint};QueueEndpoint=http://127.0.0.1:{QueuePort}/{AccountName};";

    /// <summary>The development account, shared by the tests that name their containers and queues apart.</summary>
    public static Task<Azurite> InstanceAsync() => Shared.Value;

    /// <summary>Storage to itself, for a test that needs the well-known queue names or an empty run store: a fresh account.</summary>
    public static async Task<Azurite> NewAccountAsync()
    {
        var (process, account) = await TakeAccountAsync();
        return new Azurite(process._process, process.BlobPort, process.QueuePort, account, ownsProcess: false);
    }

    /// <summary>The next unused account, on the two shared processes in turn (so two tests at once use both).</summary>
    private static async Task<(Azurite Process, string Account)> TakeAccountAsync()
    {
        var taken = Interlocked.Increment(ref _accountsTaken) - 1;
        if (taken >= AccountsPerProcess * Pool.Length)
        {
            throw new InvalidOperationException($"all {AccountsPerProcess * Pool.Length} Azurite test accounts are taken: raise AccountsPerProcess");
        }

        var process = await Pool[taken % Pool.Length].Value;
        return (process, AccountFor(taken / Pool.Length));
    }

    private static string AccountFor(int index) => $"test{index:D4}";

    public ValueTask DisposeAsync()
    {
        foreach (var gate in _gates)
        {
            gate.Dispose();
        }

        // An account's data stays until the run ends (in memory, small): another test's account is never touched.
        if (_ownsProcess)
        {
            NodeServer.Kill(_process);
            _process.Dispose();
        }

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

    /// <param name="instance">0: the development account only; otherwise it and <see cref="AccountsPerProcess"/> test accounts.</param>
    private static async Task<Azurite> StartAsync(int instance)
    {
        var script = Path.Combine(RepositoryRoot(), "node_modules", "azurite", "dist", "src", "azurite.js");
        if (!File.Exists(script))
        {
            throw new InvalidOperationException($"Azurite is not installed ({script}): run 'npm ci' at the repository root (build/test.sh does).");
        }

        var workspace = Directory.CreateTempSubdirectory("backuprelay-azurite-");
        var key = BackupRelay.Storage.StorageConnection.DevelopmentAccountKey;
        var accounts = instance == 0 ? null
            : string.Join(";", Enumerable.Range(0, AccountsPerProcess).Select(AccountFor).Prepend(BackupRelay.Storage.StorageConnection.DevelopmentAccountName)
                .Select(name => $"{name}:{key}"));
        var process = NodeServer.Start(script, workspace.FullName, new Dictionary<string, string?> { ["AZURITE_ACCOUNTS"] = accounts }, new[]
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
        return new Azurite(process, blob.Value, queue.Value, BackupRelay.Storage.StorageConnection.DevelopmentAccountName, ownsProcess: false);
    }

    [GeneratedRegex(@"Azurite (Blob|Queue) service is successfully listening at http://[^:]+:(\d+)")]
    private static partial Regex Listening();
}
