using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// One instance as it runs outside a test process: the local Functions host (<c>BackupRelay.LocalHost</c>)
/// as a child process with the published worker as its child. Settings go in as environment variables;
/// ready means the host answers <c>GET /api/health</c> (it forwards only once the worker has loaded).
/// </summary>
public sealed class HostProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private HostProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(2) };
    }

    public int Port { get; }
    public HttpClient Client { get; }
    public TimeSpan ReadyAfter { get; private set; }
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>Starts a local host on a free port; <paramref name="arguments"/> are the host's own switches.</summary>
    public static async Task<HostProcess> StartAsync(IReadOnlyDictionary<string, string> settings, params string[] arguments)
    {
        var port = FreePort();
        var configuration = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
        var host = Path.Combine(Azurite.RepositoryRoot(), "src", "BackupRelay.LocalHost", "bin", configuration, "net10.0", "BackupRelay.LocalHost.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Azurite.RepositoryRoot() };
        info.ArgumentList.Add(host);
        foreach (var argument in (string[])["--app", WorkerApp.Directory, "--port", port.ToString(CultureInfo.InvariantCulture), "--host-key", PipelineHarness.FunctionKey, .. arguments])
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment.Clear();
        info.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH");
        info.Environment["HOME"] = Environment.GetEnvironmentVariable("HOME") ?? "/tmp";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (key, value) in settings)
        {
            info.Environment[key] = value;
        }

        var watch = Stopwatch.StartNew();
        var started = new HostProcess(Process.Start(info)!, port);
        started._process.OutputDataReceived += (_, e) => started.Append(e.Data);
        started._process.ErrorDataReceived += (_, e) => started.Append(e.Data);
        started._process.BeginOutputReadLine();
        started._process.BeginErrorReadLine();
        while (watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                using var ping = await started.Client.GetAsync("/api/health");
                started.ReadyAfter = watch.Elapsed;
                return started;
            }
            catch (HttpRequestException)
            {
                if (started._process.HasExited)
                {
                    throw new InvalidOperationException($"the host exited with {started._process.ExitCode}:\n{started.Tail()}");
                }

                await Task.Delay(25);
            }
        }

        throw new TimeoutException("the host did not answer GET /api/health within 60 s:\n" + started.Tail());
    }

    /// <summary>The worker process the host runs now (its child), if any.</summary>
    public int? WorkerId()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid))
            {
                try
                {
                    var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    if (int.Parse(fields[1], CultureInfo.InvariantCulture) == _process.Id)
                    {
                        return pid;
                    }
                }
                catch (IOException)
                {
                }
            }
        }

        return null;
    }

    /// <summary>kill -9 of the worker alone: the host sees it gone and starts another.</summary>
    public void KillWorker()
    {
        if (WorkerId() is { } worker)
        {
            Process.GetProcessById(worker).Kill();
        }
    }

    /// <summary>The settings every test process needs: storage on <paramref name="azurite"/>, Huawei Cloud on <paramref name="emulator"/>.</summary>
    public static Dictionary<string, string> Settings(Azurite azurite, BackupRelay.HuaweiCloud.Emulator.RunningEmulator emulator)
    {
        var address = emulator.BaseAddress.ToString();
        return new Dictionary<string, string>
        {
            ["AzureWebJobsStorage"] = azurite.ConnectionString,
            ["Destination"] = azurite.ConnectionString,
            ["Destination__Container"] = "ges-backups",
            ["HuaweiCloud__Region"] = BackupRelay.HuaweiCloud.Emulator.DemoSeed.Region,
            ["HuaweiCloud__ProjectId"] = BackupRelay.HuaweiCloud.Emulator.DemoSeed.ProjectId,
            ["HuaweiCloud__Endpoints__Iam"] = address,
            ["HuaweiCloud__Endpoints__Ges"] = address,
            ["HuaweiCloud__Endpoints__Cse"] = address,
            ["HuaweiCloud__Auth__UserName"] = BackupRelay.HuaweiCloud.Emulator.DemoSeed.UserName,
            ["HuaweiCloud__Auth__Password"] = BackupRelay.HuaweiCloud.Emulator.DemoSeed.Password,
            ["HuaweiCloud__Auth__DomainName"] = BackupRelay.HuaweiCloud.Emulator.DemoSeed.Domain,
        };
    }

    /// <summary>kill -9 of the host and its worker (a machine lost): no shutdown, no message released.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>Peak resident set size so far (VmHWM) of the host and of its current worker, in bytes.</summary>
    public (long Host, long Worker) PeakRssBytes() => (PeakRss(_process.Id), WorkerId() is { } worker ? PeakRss(worker) : 0);

    private static long PeakRss(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    public string Tail(int chars = 6000)
    {
        lock (_output)
        {
            var text = _output.ToString();
            return text.Length > chars ? text[^chars..] : text;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        Client.Dispose();
        _process.Dispose();
    }
}
