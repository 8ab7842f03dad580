using System.Collections.Concurrent;
using System.Threading.Channels;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Azure.Functions.Worker.Grpc.Messages;

namespace BackupRelay.LocalHost;

/// <summary>The worker process ended (killed, crashed, restarted for a timeout): every invocation in flight fails with it.</summary>
public sealed class WorkerGoneException(string message) : Exception(message);

/// <summary>
/// One worker's event stream, the host side of <c>FunctionRpc.EventStream</c>: init, worker indexing
/// (<c>FunctionsMetadataRequest</c>), one load per function, then invocations matched to their answers
/// by invocation id. The worker's <c>RpcLog</c>s are written to the host's log.
/// </summary>
public sealed partial class WorkerChannel(ILogger logger, FunctionLogs logs)
{
    private readonly Channel<StreamingMessage> _outbox = Channel.CreateUnbounded<StreamingMessage>();
    private readonly ConcurrentDictionary<string, Invocation> _invocations = new();
    private readonly ConcurrentDictionary<string, string> _functionNames = new();
    private readonly TaskCompletionSource<IReadOnlyList<FunctionEntry>> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _gone = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The worker's own HTTP endpoint (ASP.NET Core integration), from its init capabilities.</summary>
    public Uri? HttpUri { get; private set; }

    /// <summary>The capabilities the worker answered its init request with (empty until then).</summary>
    public IReadOnlyDictionary<string, string> Capabilities { get; private set; } = new Dictionary<string, string>();

    /// <summary>Completes when every function is loaded.</summary>
    public Task<IReadOnlyList<FunctionEntry>> Ready => _ready.Task;

    /// <summary>Completes when the stream has ended.</summary>
    public Task Gone => _gone.Task;

    /// <summary>Runs the stream until the worker goes; called by the gRPC service for the worker's connection.</summary>
    public async Task RunAsync(IAsyncStreamReader<StreamingMessage> requests, IServerStreamWriter<StreamingMessage> responses, string appDirectory,
        CancellationToken cancellationToken)
    {
        var writing = WriteAllAsync(responses, cancellationToken);
        var loads = new Dictionary<string, FunctionEntry>();
        var loaded = new List<FunctionEntry>();
        try
        {
            await foreach (var message in requests.ReadAllAsync(cancellationToken))
            {
                switch (message.ContentCase)
                {
                    case StreamingMessage.ContentOneofCase.StartStream:
                        Send(new StreamingMessage
                        {
                            RequestId = Guid.NewGuid().ToString(),
                            WorkerInitRequest = new WorkerInitRequest
                            {
                                HostVersion = "4.0.0-backuprelay-local",
                                WorkerDirectory = appDirectory,
                                FunctionAppDirectory = appDirectory,
                                Capabilities = { ["RpcHttpTriggerMetadataRemoved"] = "true", ["HttpUri"] = "true" },
                            },
                        });
                        break;
                    case StreamingMessage.ContentOneofCase.WorkerInitResponse:
                        var init = message.WorkerInitResponse;
                        if (init.Result.Status != StatusResult.Types.Status.Success)
                        {
                            _ready.TrySetException(new InvalidOperationException($"the worker failed to initialise: {init.Result.Exception?.Message}"));
                            break;
                        }

                        if (init.Capabilities.TryGetValue("HttpUri", out var uri))
                        {
                            HttpUri = new Uri(uri);
                        }

                        Capabilities = new Dictionary<string, string>(init.Capabilities, StringComparer.Ordinal);

                        Send(new StreamingMessage { RequestId = Guid.NewGuid().ToString(), FunctionsMetadataRequest = new FunctionsMetadataRequest { FunctionAppDirectory = appDirectory } });
                        break;
                    case StreamingMessage.ContentOneofCase.FunctionMetadataResponse:
                        foreach (var metadata in message.FunctionMetadataResponse.FunctionMetadataResults)
                        {
                            var entry = FunctionEntry.From(metadata);
                            loads[entry.Id] = entry;
                            _functionNames[entry.Id] = entry.Name;
                            Send(new StreamingMessage
                            {
                                RequestId = Guid.NewGuid().ToString(),
                                FunctionLoadRequest = new FunctionLoadRequest { FunctionId = entry.Id, Metadata = metadata },
                            });
                        }

                        break;
                    case StreamingMessage.ContentOneofCase.FunctionLoadResponse:
                        var load = message.FunctionLoadResponse;
                        if (load.Result.Status != StatusResult.Types.Status.Success)
                        {
                            _ready.TrySetException(new InvalidOperationException($"the worker could not load function {load.FunctionId}: {load.Result.Exception?.Message}"));
                        }
                        else if (loads.TryGetValue(load.FunctionId, out var entry))
                        {
                            loaded.Add(entry);
                            if (loaded.Count == loads.Count)
                            {
                                _ready.TrySetResult(loaded);
                            }
                        }

                        break;
                    case StreamingMessage.ContentOneofCase.InvocationResponse:
                        if (_invocations.TryRemove(message.InvocationResponse.InvocationId, out var pending))
                        {
                            pending.Answer.TrySetResult(message.InvocationResponse);
                        }

                        break;
                    case StreamingMessage.ContentOneofCase.RpcLog:
                        WriteLog(message.RpcLog);
                        break;
                    default:
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or Grpc.Core.RpcException)
        {
            // The worker went away mid-stream.
        }
        finally
        {
            _outbox.Writer.TryComplete();
            var gone = new WorkerGoneException("the worker process ended while the invocation ran");
            _ready.TrySetException(gone);
            foreach (var id in _invocations.Keys)
            {
                if (_invocations.TryRemove(id, out var pending))
                {
                    pending.Answer.TrySetException(gone);
                }
            }

            _gone.TrySetResult();
            await writing.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sends one invocation and waits for its answer. Cancelling sends <c>InvocationCancel</c> (the
    /// function's token) and still waits for the worker's answer, as the runtime does; the worker's end
    /// fails it with <see cref="WorkerGoneException"/>.
    /// </summary>
    public async Task<InvocationResponse> InvokeAsync(InvocationRequest request, CancellationToken cancellationToken = default)
    {
        var pending = new Invocation(new TaskCompletionSource<InvocationResponse>(TaskCreationOptions.RunContinuationsAsynchronously),
            _functionNames.TryGetValue(request.FunctionId, out var name) ? name : request.FunctionId);
        if (_gone.Task.IsCompleted || !_invocations.TryAdd(request.InvocationId, pending))
        {
            throw new WorkerGoneException("the worker is not running");
        }

        Send(new StreamingMessage { RequestId = Guid.NewGuid().ToString(), InvocationRequest = request });
        await using var cancel = cancellationToken.Register(() => Send(new StreamingMessage
        {
            RequestId = Guid.NewGuid().ToString(),
            InvocationCancel = new InvocationCancel { InvocationId = request.InvocationId, GracePeriod = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)) },
        }));
        return await pending.Answer.Task.ConfigureAwait(false);
    }

    /// <summary>An invocation sent and not yet answered: the host attributes the worker's logs to it while it runs.</summary>
    private sealed record Invocation(TaskCompletionSource<InvocationResponse> Answer, string Function);

    /// <summary>Asks the worker to exit (it answers by ending its process with code 0).</summary>
    public void Terminate(TimeSpan grace) =>
        Send(new StreamingMessage { RequestId = Guid.NewGuid().ToString(), WorkerTerminate = new WorkerTerminate { GracePeriod = Duration.FromTimeSpan(grace) } });

    private void Send(StreamingMessage message) => _outbox.Writer.TryWrite(message);

    private async Task WriteAllAsync(IServerStreamWriter<StreamingMessage> responses, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var message in _outbox.Reader.ReadAllAsync(cancellationToken))
            {
                await responses.WriteAsync(message, cancellationToken);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException or Grpc.Core.RpcException)
        {
            // The stream closed: the reader side reports the worker gone.
        }
    }

    /// <summary>
    /// The worker's log lines as the Functions host treats them: a system log (the worker's own) goes to the host's log;
    /// a user log (the app's) that names a running invocation is that invocation's (category <c>Function.&lt;name&gt;.User</c>,
    /// with its invocation id in scope); a user log that names none is one the real host drops — here it is still
    /// written, under <see cref="FunctionLogs.UnattributedCategory"/>, and counted, so a test can tell the two apart.
    /// </summary>
    private void WriteLog(RpcLog log)
    {
        var level = log.Level switch
        {
            RpcLog.Types.Level.Trace => LogLevel.Trace,
            RpcLog.Types.Level.Debug => LogLevel.Debug,
            RpcLog.Types.Level.Information => LogLevel.Information,
            RpcLog.Types.Level.Warning => LogLevel.Warning,
            RpcLog.Types.Level.Error => LogLevel.Error,
            RpcLog.Types.Level.Critical => LogLevel.Critical,
            _ => LogLevel.None,
        };
        if (log.LogCategory == RpcLog.Types.RpcLogCategory.CustomMetric || level == LogLevel.None)
        {
            return;
        }

        var message = log.Message + (log.Exception is { } e ? $" ({e.Type}: {e.Message})" : "");
        if (log.LogCategory == RpcLog.Types.RpcLogCategory.System)
        {
            if (logger.IsEnabled(level))
            {
                Log.Worker(logger, level, log.Category, message);
            }

            return;
        }

        if (!string.IsNullOrEmpty(log.InvocationId) && _invocations.TryGetValue(log.InvocationId, out var invocation))
        {
            logs.Attributed(invocation.Function, log.InvocationId, level, log.Category, message);
        }
        else
        {
            logs.Unattributed(level, log.Category, message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1001, Message = "{Category}: {Message}")]
        public static partial void Worker(ILogger logger, LogLevel level, string category, string message);
    }
}

/// <summary>The gRPC service the worker connects to: each stream is handed to the channel the host created for that worker id.</summary>
public sealed class FunctionRpcService(WorkerRegistry workers) : FunctionRpc.FunctionRpcBase
{
    public override async Task EventStream(IAsyncStreamReader<StreamingMessage> requestStream, IServerStreamWriter<StreamingMessage> responseStream,
        ServerCallContext context)
    {
        if (!await requestStream.MoveNext(context.CancellationToken) || requestStream.Current.StartStream is not { } start
            || workers.Find(start.WorkerId) is not { } worker)
        {
            return;
        }

        await worker.Channel.RunAsync(new Prepended(requestStream.Current, requestStream), responseStream, worker.AppDirectory, context.CancellationToken);
    }

    /// <summary>The first message (already read to find the worker) put back in front of the rest.</summary>
    private sealed class Prepended(StreamingMessage first, IAsyncStreamReader<StreamingMessage> rest) : IAsyncStreamReader<StreamingMessage>
    {
        private bool _first = true;

        public StreamingMessage Current { get; private set; } = first;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (_first)
            {
                _first = false;
                return true;
            }

            var more = await rest.MoveNext(cancellationToken);
            Current = more ? rest.Current : Current;
            return more;
        }
    }
}

/// <summary>The workers this host started, by worker id.</summary>
public sealed class WorkerRegistry
{
    private readonly ConcurrentDictionary<string, WorkerProcess> _workers = new();

    public void Add(WorkerProcess worker) => _workers[worker.WorkerId] = worker;

    public void Remove(WorkerProcess worker) => _workers.TryRemove(worker.WorkerId, out _);

    public WorkerProcess? Find(string id) => _workers.GetValueOrDefault(id);
}
