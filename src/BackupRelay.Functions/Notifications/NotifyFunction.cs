using BackupRelay.Configuration;
using BackupRelay.Hosting;
using BackupRelay.Messaging;
using BackupRelay.Notifications;
using Microsoft.Azure.Functions.Worker;

namespace BackupRelay.Functions.Notifications;

/// <summary>Sends one signed notification (run ended, graph stale) to the configured receiver.</summary>
public sealed class NotifyFunction(NotifyHandler notify, FunctionInvoker invoker)
{
    [Function(FunctionNames.Notify)]
    public Task NotifyAsync([QueueTrigger(QueueNames.Notify, Connection = BackupRelayServiceCollectionExtensions.AppStorageSetting)] string message,
        long dequeueCount, FunctionContext context, CancellationToken cancellationToken) =>
        invoker.RunAsync(notify, context.FunctionDefinition.Name, message, dequeueCount, cancellationToken);
}
