namespace BackupRelay.Messaging;

/// <summary>
/// The pipeline's next hops as the queue handlers send them: <see cref="WorkQueues"/> in the app, a recording
/// sender in the handlers' unit tests.
/// </summary>
public interface IWorkSender
{
    Task SendPollAsync(PollBackupJobMessage message, TimeSpan delay, CancellationToken cancellationToken = default);

    Task SendOperationPollAsync(PollOperationMessage message, TimeSpan delay, CancellationToken cancellationToken = default);

    Task SendUploadAsync(RestoreUploadMessage message, TimeSpan? delay = null, CancellationToken cancellationToken = default);

    Task SendCopyAsync(CopyBackupFileMessage message, CancellationToken cancellationToken = default);
}
