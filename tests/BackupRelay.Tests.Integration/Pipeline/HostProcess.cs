using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// The real executable (<c>BackupRelay.Host.dll</c>) as a child process: the standalone host, or the
/// custom handler when <c>FUNCTIONS_CUSTOMHANDLER_PORT</c> is given. Settings go in as environment
/// variables; ready means any answer to <c>GET /</c>.
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

    public static async Task<HostProcess> StartAsync(IReadOnlyDictionary<string, string> settings, bool customHandler = false)
    {
        var port = FreePort();
        var configuration = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
        var host = Path.Combine(Azurite.RepositoryRoot(), "src", "BackupRelay.Host", "bin", configuration, "net10.0", "BackupRelay.Host.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Azurite.RepositoryRoot() };
        info.ArgumentList.Add(host);
        info.Environment.Clear();
        info.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH");
        info.Environment["HOME"] = Environment.GetEnvironmentVariable("HOME") ?? "/tmp";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["FUNCTIONS_APP_ROOT_PATH"] = Azurite.RepositoryRoot();
        if (customHandler)
        {
            info.Environment["FUNCTIONS_CUSTOMHANDLER_PORT"] = port.ToString(CultureInfo.InvariantCulture);
        }
        else
        {
            info.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        }

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
                using var ping = await started.Client.GetAsync("/");
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

        throw new TimeoutException("the host did not answer GET / within 60 s:\n" + started.Tail());
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

    /// <summary>kill -9: no shutdown, no message released.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>Peak resident set size so far (VmHWM), in bytes; 0 when it cannot be read.</summary>
    public long PeakRssBytes()
    {
        try
        {
            var line = File.ReadLines($"/proc/{_process.Id}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
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
