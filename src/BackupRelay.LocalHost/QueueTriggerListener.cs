using System.Globalization;
using System.Text.Json;
using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Azure.Functions.Worker.Grpc.Messages;

namespace BackupRelay.LocalHost;

/// <summary>
/// A queue trigger with the WebJobs queue listener's rules (Microsoft.Azure.WebJobs.Extensions.Storage.Queues):
/// batches of <c>batchSize</c>, a new batch once no more than <c>newBatchThreshold</c> run (so at most
/// their sum in flight), the message hidden while its invocation runs and renewed, a failed message
/// visible again after <c>visibilityTimeout</c>, the original message moved to <c>&lt;queue&gt;-poison</c>
/// after <c>maxDequeueCount</c> deliveries, a message that is not base64 moved there verbatim without an
/// invocation, and polling that backs off to <c>maxPollingInterval</c>.
/// Written here rather than hosting the WebJobs listener itself: that listener needs the WebJobs
/// function-indexing host around it, which cannot bind functions it learns at run time from the worker.
/// </summary>
public sealed partial class QueueTriggerListener(LocalFunctionsHost host, FunctionEntry function, ILogger<QueueTriggerListener> logger)
{
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var settings = host.HostJson;
        var connection = host.Setting(function.Property("connection") ?? "AzureWebJobsStorage")
            ?? throw new InvalidOperationException($"{function.Name}: the setting {function.Property("connection") ?? "AzureWebJobsStorage"} is missing");
        var queueName = function.Property("queueName")!;
        var raw = new QueueClient(connection, queueName + "-poison", new QueueClientOptions(StorageVersions.Queue) { MessageEncoding = QueueMessageEncoding.None });
        var poison = new QueueClient(connection, queueName + "-poison", new QueueClientOptions(StorageVersions.Queue) { MessageEncoding = Encoding(settings) });
        var options = new QueueClientOptions(StorageVersions.Queue) { MessageEncoding = Encoding(settings) };
        options.MessageDecodingFailed += async args =>
        {
            if (args.ReceivedMessage is { } undecodable)
            {
                // As the runtime: the original text, unchanged, to the poison queue; no invocation.
                Log.Undecodable(logger, function.Name, undecodable.MessageId);
                await raw.CreateIfNotExistsAsync(cancellationToken: CancellationToken.None);
                await raw.SendMessageAsync(undecodable.Body.ToString(), CancellationToken.None);
                await args.Queue.DeleteMessageAsync(undecodable.MessageId, undecodable.PopReceipt, CancellationToken.None);
            }
        };
        var queue = new QueueClient(connection, queueName, options);
        await CreateAsync(queue, stoppingToken);

        var inFlight = new List<Task>();
        var idle = host.Options.MinPollingInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            inFlight.RemoveAll(t => t.IsCompleted);
            if (inFlight.Count > settings.NewBatchThreshold)
            {
                await Task.WhenAny(inFlight);
                continue;
            }

            QueueMessage[] batch;
            try
            {
                batch = (await queue.ReceiveMessagesAsync(settings.BatchSize, host.Options.MessageVisibility, stoppingToken)).Value;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is RequestFailedException or HttpRequestException or AggregateException)
            {
                Log.ReceiveFailed(logger, queueName, ex.Message);
                batch = [];
            }

            if (batch.Length == 0)
            {
                await Delay(idle, stoppingToken);
                idle = TimeSpan.FromTicks(Math.Min(settings.MaxPollingInterval.Ticks, idle.Ticks * 2));
                continue;
            }

            idle = host.Options.MinPollingInterval;
            inFlight.AddRange(batch.Select(m => ProcessAsync(queue, poison, m, stoppingToken)));
        }

        await Task.WhenAll(inFlight).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static QueueMessageEncoding Encoding(HostJson settings) => settings.Base64 ? QueueMessageEncoding.Base64 : QueueMessageEncoding.None;

    private async Task ProcessAsync(QueueClient queue, QueueClient poison, QueueMessage message, CancellationToken stoppingToken)
    {
        var receipt = message.PopReceipt;
        using var renewal = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var renewing = RenewAsync();
        var succeeded = false;
        try
        {
            var response = await host.InvokeAsync(function.Name, request =>
            {
                request.InputData.Add(new ParameterBinding { Name = function.BindingName, Data = new TypedData { String = message.Body.ToString() } });
                var metadata = request.TriggerMetadata;
                metadata["DequeueCount"] = new TypedData { Json = message.DequeueCount.ToString(CultureInfo.InvariantCulture) };
                metadata["Id"] = new TypedData { String = message.MessageId };
                metadata["PopReceipt"] = new TypedData { String = message.PopReceipt };
                metadata["InsertionTime"] = new TypedData { Json = JsonSerializer.Serialize(message.InsertedOn) };
                metadata["ExpirationTime"] = new TypedData { Json = JsonSerializer.Serialize(message.ExpiresOn) };
                metadata["NextVisibleTime"] = new TypedData { Json = JsonSerializer.Serialize(message.NextVisibleOn) };
                metadata["QueueTrigger"] = new TypedData { String = message.Body.ToString() };
            }, stoppingToken);
            succeeded = response.Result.Status == StatusResult.Types.Status.Success;
            if (!succeeded)
            {
                Log.InvocationFailed(logger, function.Name, message.DequeueCount, response.Result.Exception?.Message ?? response.Result.Status.ToString());
            }
        }
        catch (Exception ex) when (ex is WorkerGoneException or TimeoutException or OperationCanceledException)
        {
            Log.InvocationFailed(logger, function.Name, message.DequeueCount, ex.Message);
        }
        finally
        {
            await renewal.CancelAsync();
            await renewing;
        }

        if (host.IsStopping)
        {
            return; // as the runtime on shutdown: the message comes back when its visibility ends
        }

        try
        {
            if (succeeded)
            {
                await queue.DeleteMessageAsync(message.MessageId, receipt, CancellationToken.None);
            }
            else if (message.DequeueCount >= host.HostJson.MaxDequeueCount)
            {
                Log.Poisoned(logger, function.Name, message.MessageId, message.DequeueCount);
                await poison.CreateIfNotExistsAsync(cancellationToken: CancellationToken.None);
                await poison.SendMessageAsync(message.Body, cancellationToken: CancellationToken.None);
                await queue.DeleteMessageAsync(message.MessageId, receipt, CancellationToken.None);
            }
            else
            {
                await queue.UpdateMessageAsync(message.MessageId, receipt, visibilityTimeout: host.HostJson.VisibilityTimeout, cancellationToken: CancellationToken.None);
            }
        }
        catch (RequestFailedException ex)
        {
            // Storage refused (or the message moved on): it becomes visible again when its visibility ends.
            Log.SettleFailed(logger, function.Name, message.MessageId, ex.Status);
        }

        async Task RenewAsync()
        {
            var every = host.Options.MessageVisibility / 2;
            while (!renewal.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(every, renewal.Token);
                    var renewed = await queue.UpdateMessageAsync(message.MessageId, receipt, visibilityTimeout: host.Options.MessageVisibility,
                        cancellationToken: renewal.Token);
                    receipt = renewed.Value.PopReceipt;
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (RequestFailedException ex)
                {
                    Log.RenewFailed(logger, function.Name, message.MessageId, ex.Status);
                }
            }
        }
    }

    private async Task CreateAsync(QueueClient queue, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await queue.CreateIfNotExistsAsync(cancellationToken: stoppingToken);
                return;
            }
            catch (RequestFailedException ex)
            {
                Log.ReceiveFailed(logger, queue.Name, ex.Message);
                await Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }

    private static async Task Delay(TimeSpan delay, CancellationToken cancellationToken) =>
        await Task.Delay(delay, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

    private static partial class Log
    {
        [LoggerMessage(1030, LogLevel.Warning, "{Function} failed (delivery {DequeueCount}): {Reason}")]
        public static partial void InvocationFailed(ILogger logger, string function, long dequeueCount, string reason);

        [LoggerMessage(1031, LogLevel.Error, "{Function}: message {MessageId} moved to the poison queue after {DequeueCount} deliveries")]
        public static partial void Poisoned(ILogger logger, string function, string messageId, long dequeueCount);

        [LoggerMessage(1032, LogLevel.Error, "{Function}: message {MessageId} is not valid base64; moved to the poison queue unchanged")]
        public static partial void Undecodable(ILogger logger, string function, string messageId);

        [LoggerMessage(1033, LogLevel.Warning, "Receiving from {Queue} failed: {Reason}")]
        public static partial void ReceiveFailed(ILogger logger, string queue, string reason);

        [LoggerMessage(1034, LogLevel.Warning, "{Function}: message {MessageId} could not be settled ({Status}); it comes back when its visibility ends")]
        public static partial void SettleFailed(ILogger logger, string function, string messageId, int status);

        [LoggerMessage(1035, LogLevel.Warning, "{Function}: renewing message {MessageId} failed ({Status})")]
        public static partial void RenewFailed(ILogger logger, string function, string messageId, int status);
    }
}
