using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace BackupRelay.LocalHost;

/// <summary>
/// The published worker executable as the Functions host starts it: <c>dotnet &lt;app&gt;.dll</c> with the
/// host's switches, the app settings as environment variables and the app folder named in
/// <c>FUNCTIONS_APPLICATION_DIRECTORY</c>. Its standard output and error go to the host's log and are
/// kept (the tail) for reporting a worker that could not start.
/// </summary>
public sealed partial class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly ILogger _logger;
    private EventHandler? _killOnExit;

    private WorkerProcess(Process process, string workerId, string appDirectory, ILogger logger, FunctionLogs logs)
    {
        _process = process;
        WorkerId = workerId;
        AppDirectory = appDirectory;
        _logger = logger;
        Channel = new WorkerChannel(logger, logs);
    }

    public string WorkerId { get; }
    public string AppDirectory { get; }
    public WorkerChannel Channel { get; }
    public int ProcessId => _process.Id;
    public bool HasExited => _process.HasExited;
    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    public static WorkerProcess Start(string appDirectory, string assembly, Uri grpcUri, IReadOnlyDictionary<string, string> settings, WorkerRegistry registry,
        ILogger logger, FunctionLogs logs)
    {
        var workerId = Guid.NewGuid().ToString();
        var requestId = Guid.NewGuid().ToString();
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = appDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var uri = grpcUri.ToString();
        foreach (var arg in new[]
        {
            Path.Combine(appDirectory, assembly), "--host", grpcUri.Host, "--port", grpcUri.Port.ToString(CultureInfo.InvariantCulture),
            "--workerId", workerId, "--requestId", requestId, "--grpcMaxMessageLength", "2147483647",
            "--functions-uri", uri, "--functions-worker-id", workerId, "--functions-request-id", requestId,
            "--functions-grpc-max-message-length", "2147483647",
        })
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment.Clear();
        foreach (var name in new[] { "PATH", "HOME", "DOTNET_ROOT", "TMPDIR" })
        {
            if (Environment.GetEnvironmentVariable(name) is { } value)
            {
                info.Environment[name] = value;
            }
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (key, value) in settings)
        {
            info.Environment[key] = value;
        }

        info.Environment["FUNCTIONS_WORKER_RUNTIME"] = "dotnet-isolated";
        info.Environment["FUNCTIONS_WORKER_DIRECTORY"] = appDirectory;
        info.Environment["FUNCTIONS_APPLICATION_DIRECTORY"] = appDirectory;
        info.Environment["AzureWebJobsScriptRoot"] = appDirectory;

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var worker = new WorkerProcess(process, workerId, appDirectory, logger, logs);
        registry.Add(worker);
        process.OutputDataReceived += (_, e) => worker.Append(e.Data, error: false);
        process.ErrorDataReceived += (_, e) => worker.Append(e.Data, error: true);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        // A host that exits without stopping its worker (a test process ending, a host killed) must not leave it running:
        // the worker does not always notice its gRPC stream is gone. (The Functions host runs its workers in its own job.)
        worker._killOnExit = (_, _) => worker.KillQuietly();
        AppDomain.CurrentDomain.ProcessExit += worker._killOnExit;
        Log.Started(logger, process.Id);
        return worker;
    }

    public Task WaitForExitAsync(CancellationToken cancellationToken = default) => _process.WaitForExitAsync(cancellationToken);

    private void KillQuietly()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Already gone, or never started.
        }
    }

    /// <summary>Waits until the worker's HTTP endpoint accepts connections; a worker that exits first or never listens is killed and reported.</summary>
    public async Task WaitForListenerAsync(Uri uri, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(uri.Host == "localhost" ? "127.0.0.1" : uri.Host, uri.Port, cancellationToken);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !HasExited)
            {
                await Task.Delay(50, cancellationToken);
            }
            catch (SocketException)
            {
                await KillAsync();
                throw new WorkerStartException(ExitCode, Tail(), $"the worker's HTTP endpoint {uri} did not accept connections");
            }
        }
    }

    /// <summary>kill -9, as the runtime does to a worker whose invocation outlived <c>functionTimeout</c>.</summary>
    public async Task KillAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        await _process.WaitForExitAsync();
    }

    /// <summary>What the worker wrote last (its start-up problems, a crash).</summary>
    public string Tail(int chars = 4000)
    {
        lock (_output)
        {
            var text = _output.ToString();
            return text.Length > chars ? text[^chars..] : text;
        }
    }

    private void Append(string? line, bool error)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
            if (_output.Length > 64 * 1024)
            {
                _output.Remove(0, _output.Length - (32 * 1024));
            }
        }

        Log.Output(_logger, error ? LogLevel.Warning : LogLevel.Information, line);
    }

    public async ValueTask DisposeAsync()
    {
        AppDomain.CurrentDomain.ProcessExit -= _killOnExit;
        await KillAsync();
        _process.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(1010, LogLevel.Information, "Worker process {ProcessId} started")]
        public static partial void Started(ILogger logger, int processId);

        [LoggerMessage(EventId = 1011, Message = "worker: {Line}")]
        public static partial void Output(ILogger logger, LogLevel level, string line);
    }
}

/// <summary>The worker could not start: its exit code (3: a configuration problem it reported) and what it wrote.</summary>
public sealed class WorkerStartException(int? exitCode, string output, string reason) : Exception(reason)
{
    public int? ExitCode { get; } = exitCode;
    public string Output { get; } = output;
}
