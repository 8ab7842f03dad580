using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Azure.Functions.Worker.Grpc.Messages;

namespace BackupRelay.LocalHost;

/// <summary>
/// A Functions host for local runs and tests (never deployed): it starts the published worker, speaks
/// the worker's gRPC contract, learns the functions from the worker's own indexing, and runs their
/// triggers with the runtime's rules (<see cref="QueueTriggerListener"/>, <see cref="TimerTriggerListener"/>,
/// <see cref="HttpTriggerFront"/>). A worker that dies or outlives <c>functionTimeout</c> is restarted.
/// </summary>
public sealed partial class LocalFunctionsHost : IAsyncDisposable
{
    private readonly LocalHostOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly FunctionLogs _logs;
    private readonly WorkerRegistry _registry = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _listeners = [];
    private readonly Lock _gate = new();
    private WebApplication? _server;
    private Uri _grpcUri = null!;
    private WorkerProcess? _worker;
    private TaskCompletionSource<WorkerProcess> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _supervisor;

    private LocalFunctionsHost(LocalHostOptions options, ILoggerFactory loggers)
    {
        _options = options;
        _loggers = loggers;
        _logger = loggers.CreateLogger("BackupRelay.LocalHost");
        _logs = new FunctionLogs(loggers);
        // The app's host.json with the app settings that override it, as the runtime reads it (and the worker, from the same settings).
        HostJson = HostJson.Read(Path.Combine(options.AppDirectory, "host.json"), options.Setting);
        WorkerAssembly = JsonNode.Parse(File.ReadAllText(Path.Combine(options.AppDirectory, "worker.config.json")))!["description"]!["defaultWorkerPath"]!.GetValue<string>();
    }

    public HostJson HostJson { get; }
    public string WorkerAssembly { get; }

    /// <summary>The capabilities the current worker declared at its start (none while no worker runs).</summary>
    public IReadOnlyDictionary<string, string> WorkerCapabilities => _worker?.Channel.Capabilities ?? new Dictionary<string, string>();

    /// <summary>The worker's user logs as the host attributes them to invocations (or could not).</summary>
    public FunctionLogs FunctionLogs => _logs;
    public LocalHostOptions Options => _options;

    /// <summary>The HTTP address callers use (<c>http://127.0.0.1:port</c>).</summary>
    public Uri HttpAddress { get; private set; } = null!;

    /// <summary>The functions the worker indexed (by name).</summary>
    public IReadOnlyDictionary<string, FunctionEntry> Functions { get; private set; } = new Dictionary<string, FunctionEntry>();

    /// <summary>How many times a worker was started (1 + restarts).</summary>
    public int WorkerStarts { get; private set; }

    /// <summary>The current worker process (tests kill it; figures read its memory).</summary>
    public WorkerProcess? Worker => _worker;

    private readonly InvocationCounts _counts = new();

    /// <summary>Invocations sent to the worker, by function.</summary>
    public IReadOnlyDictionary<string, int> Invocations => _counts.Sent;

    /// <summary>Invocations running now, by function.</summary>
    public int InFlight(string functionName) => _counts.InFlight(functionName);

    /// <summary>The most invocations of a function that ran at once.</summary>
    public int MaxInFlight(string functionName) => _counts.MaxInFlight(functionName);

    /// <summary>Starts the server, the worker, and every trigger; returns once the worker has loaded its functions.</summary>
    public static async Task<LocalFunctionsHost> StartAsync(LocalHostOptions options, ILoggerFactory loggers, CancellationToken cancellationToken = default)
    {
        var host = new LocalFunctionsHost(options, loggers);
        try
        {
            await host.StartCoreAsync(cancellationToken);
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        var grpcPort = FreePort();
        var httpPort = _options.HttpPort == 0 ? FreePort() : _options.HttpPort;
        var builder = WebApplication.CreateSlimBuilder();
        // The server's own log lines (Kestrel, gRPC, the forwarder's "Proxying to <url>") would carry a
        // ?code= key: the host logs what it does itself, with function names and ids only.
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(_registry);
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = int.MaxValue;
            o.MaxSendMessageSize = int.MaxValue;
        });
        builder.Services.AddHttpForwarder();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // The worker speaks gRPC over HTTP/2 without TLS (h2c): that endpoint takes HTTP/2 only.
            kestrel.Listen(IPAddress.Loopback, grpcPort, o => o.Protocols = HttpProtocols.Http2);
            kestrel.Listen(IPAddress.Loopback, httpPort, o => o.Protocols = HttpProtocols.Http1AndHttp2);
            kestrel.Limits.MaxRequestBodySize = null;
        });
        _server = builder.Build();
        var front = new HttpTriggerFront(this, _server.Services.GetRequiredService<Yarp.ReverseProxy.Forwarder.IHttpForwarder>(),
            _loggers.CreateLogger<HttpTriggerFront>());
        _server.Use(async (context, next) =>
        {
            if (context.Connection.LocalPort == httpPort)
            {
                await front.HandleAsync(context);
                return;
            }

            await next(context);
        });
        _server.MapGrpcService<FunctionRpcService>();
        await _server.StartAsync(cancellationToken);
        _grpcUri = new Uri($"http://127.0.0.1:{grpcPort}/");
        HttpAddress = new Uri($"http://127.0.0.1:{httpPort}");

        var worker = await StartWorkerAsync(cancellationToken);
        _supervisor = SuperviseAsync(worker);
        foreach (var function in Functions.Values)
        {
            switch (function.TriggerType)
            {
                case "queueTrigger":
                    _listeners.Add(new QueueTriggerListener(this, function, _loggers.CreateLogger<QueueTriggerListener>()).RunAsync(_stopping.Token));
                    break;
                case "timerTrigger":
                    _listeners.Add(new TimerTriggerListener(this, function, _loggers.CreateLogger<TimerTriggerListener>()).RunAsync(_stopping.Token));
                    break;
                default:
                    break;
            }
        }
    }

    private async Task<WorkerProcess> StartWorkerAsync(CancellationToken cancellationToken)
    {
        var worker = WorkerProcess.Start(_options.AppDirectory, WorkerAssembly, _grpcUri, _options.Settings, _registry, _logger, _logs);
        WorkerStarts++;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.WorkerStartTimeout);
        var exited = worker.WaitForExitAsync(timeout.Token);
        var ready = worker.Channel.Ready;
        try
        {
            var first = await Task.WhenAny(ready, exited);
            if (first == exited || !ready.IsCompletedSuccessfully)
            {
                throw new WorkerStartException(worker.ExitCode, worker.Tail(),
                    ready.Exception?.InnerException?.Message ?? (worker.HasExited ? $"the worker exited with code {worker.ExitCode}" : "the worker did not load its functions in time"));
            }
        }
        catch (OperationCanceledException)
        {
            await worker.KillAsync();
            throw new WorkerStartException(null, worker.Tail(), $"the worker did not connect and load its functions within {_options.WorkerStartTimeout.TotalSeconds:F0} s");
        }

        if (worker.Channel.HttpUri is { } httpUri)
        {
            // The worker names its HTTP endpoint when it initialises, before its server listens: requests
            // are forwarded only once it accepts connections.
            await worker.WaitForListenerAsync(httpUri, _options.WorkerStartTimeout, cancellationToken);
        }

        Functions = ready.Result.ToDictionary(f => f.Name, StringComparer.Ordinal);
        lock (_gate)
        {
            _worker = worker;
            _ready.TrySetResult(worker);
        }

        Log.WorkerReady(_logger, worker.ProcessId, Functions.Count);
        if (worker.Channel.Capabilities.TryGetValue("WorkerOpenTelemetryEnabled", out var otel) && bool.TryParse(otel, out var exports) && exports
            && !string.Equals(HostJson.TelemetryMode, "OpenTelemetry", StringComparison.OrdinalIgnoreCase))
        {
            // The real host then sends the worker's logs to Application Insights itself, beside the worker's own exporter.
            Log.TelemetryTwice(_logger, HostJson.TelemetryMode ?? "(not set)");
        }

        return worker;
    }

    /// <summary>Restarts the worker whenever it ends while the host runs (a crash, a kill, a function timeout).</summary>
    private async Task SuperviseAsync(WorkerProcess worker)
    {
        while (!_stopping.IsCancellationRequested)
        {
            await Task.WhenAny(worker.WaitForExitAsync(), worker.Channel.Gone);
            lock (_gate)
            {
                // (KillWorkerAsync may have done this already: callers may be waiting on the fresh one.)
                if (_ready.Task.IsCompleted)
                {
                    _ready = new TaskCompletionSource<WorkerProcess>(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                _worker = null;
            }

            await worker.KillAsync();
            _registry.Remove(worker);
            if (_stopping.IsCancellationRequested)
            {
                return;
            }

            Log.WorkerRestarting(_logger, worker.ProcessId, worker.ExitCode);
            while (!_stopping.IsCancellationRequested)
            {
                try
                {
                    worker = await StartWorkerAsync(_stopping.Token);
                    break;
                }
                catch (WorkerStartException ex)
                {
                    Log.WorkerStartFailed(_logger, ex.Message);
                    await Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None);
                }
            }
        }
    }

    /// <summary>
    /// One invocation on the current worker (waiting for one if it is restarting). An invocation that
    /// outlives <c>functionTimeout</c> fails and, as the runtime does for out-of-process workers, the
    /// worker is restarted, taking every invocation in flight with it.
    /// </summary>
    public async Task<InvocationResponse> InvokeAsync(string functionName, Action<InvocationRequest> fill, CancellationToken cancellationToken)
    {
        var worker = await ReadyWorkerAsync(cancellationToken);
        using var activity = new Activity("invoke " + functionName).SetIdFormat(ActivityIdFormat.W3C).Start();
        var request = new InvocationRequest
        {
            InvocationId = Guid.NewGuid().ToString(),
            FunctionId = Functions[functionName].Id,
            // The worker requires a trace context on every invocation (the real host always sends one).
            TraceContext = new RpcTraceContext { TraceParent = activity.Id ?? "", TraceState = "" },
        };
        fill(request);
        using (_counts.Begin(functionName))
        {
            var invocation = worker.Channel.InvokeAsync(request, cancellationToken);
            var limit = Task.Delay(HostJson.FunctionTimeout, CancellationToken.None);
            if (await Task.WhenAny(invocation, limit) == limit)
            {
                Log.FunctionTimeout(_logger, functionName, HostJson.FunctionTimeout);
                await KillWorkerAsync(worker);
                throw new TimeoutException($"{functionName} outlived functionTimeout ({HostJson.FunctionTimeout}); the worker was restarted");
            }

            var response = await invocation;
            if (_options.KillWorkerBeforeAnswer?.Invoke(functionName, request, response) == true)
            {
                await KillWorkerAsync(worker);
                throw new WorkerGoneException($"{functionName}: the worker was killed after its work, before its answer (fault injection)");
            }

            return response;
        }
    }

    /// <summary>
    /// Runs a timer function now, as the runtime's admin endpoint (<c>POST /admin/functions/{name}</c>) does:
    /// one invocation with a <c>TimerInfo</c> whose <c>IsPastDue</c> is as given.
    /// </summary>
    public Task<InvocationResponse> RunTimerNowAsync(string functionName, bool isPastDue = false, CancellationToken cancellationToken = default)
    {
        var function = Functions[functionName];
        var info = TimerTriggerListener.TimerInfo(null, DateTimeOffset.UtcNow, isPastDue);
        return InvokeAsync(functionName, request =>
            request.InputData.Add(new ParameterBinding { Name = function.BindingName, Data = new TypedData { Json = info } }), cancellationToken);
    }

    /// <summary>The current worker, once it has loaded its functions (waiting while it restarts).</summary>
    internal async Task<WorkerProcess> ReadyWorkerAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task<WorkerProcess> ready;
            lock (_gate)
            {
                ready = _ready.Task;
            }

            var worker = await ready.WaitAsync(cancellationToken);
            if (!worker.HasExited)
            {
                return worker;
            }

            // Killed a moment ago: the supervisor is about to start another.
            await Task.Delay(20, cancellationToken);
        }
    }

    /// <summary>Kills a worker the host gives up on; nothing more is sent to it while the supervisor starts another.</summary>
    private async Task KillWorkerAsync(WorkerProcess worker)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_worker, worker))
            {
                _ready = new TaskCompletionSource<WorkerProcess>(TaskCreationOptions.RunContinuationsAsynchronously);
                _worker = null;
            }
        }

        await worker.KillAsync();
    }

    /// <summary>An app setting (connection strings, %name% expressions).</summary>
    public string? Setting(string name) => _options.Settings.TryGetValue(name, out var value) ? value : null;

    /// <summary>
    /// Stops the triggers (in-flight invocations get <c>InvocationCancel</c> through their tokens and
    /// their messages come back after their visibility timeout), then asks the worker to exit.
    /// </summary>
    public async Task StopAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync();
        await Task.WhenAll(_listeners).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_worker is { } worker)
        {
            worker.Channel.Terminate(TimeSpan.FromSeconds(5));
            await worker.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await worker.KillAsync();
        }

        if (_supervisor is not null)
        {
            await _supervisor.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_server is not null)
        {
            await _server.StopAsync();
        }
    }

    /// <summary>The host is stopping: triggers settle nothing more (unfinished messages come back after their visibility).</summary>
    internal bool IsStopping => _stopping.IsCancellationRequested;

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (_worker is { } worker)
        {
            await worker.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _stopping.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static partial class Log
    {
        [LoggerMessage(1020, LogLevel.Information, "Worker {ProcessId} loaded {Count} functions")]
        public static partial void WorkerReady(ILogger logger, int processId, int count);

        [LoggerMessage(1021, LogLevel.Warning, "Worker {ProcessId} ended (exit code {ExitCode}); starting a new one")]
        public static partial void WorkerRestarting(ILogger logger, int processId, int? exitCode);

        [LoggerMessage(1022, LogLevel.Error, "A new worker could not start: {Reason}")]
        public static partial void WorkerStartFailed(ILogger logger, string reason);

        [LoggerMessage(1024, LogLevel.Warning, "The worker exports its own telemetry (WorkerOpenTelemetryEnabled) but host.json's telemetryMode is {Mode}, not OpenTelemetry: the host would send the worker's logs a second time")]
        public static partial void TelemetryTwice(ILogger logger, string mode);

        [LoggerMessage(1023, LogLevel.Error, "{Function} outlived functionTimeout ({Timeout}); restarting the worker")]
        public static partial void FunctionTimeout(ILogger logger, string function, TimeSpan timeout);
    }
}
