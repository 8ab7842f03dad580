namespace BackupRelay.Copying;

/// <summary>
/// The first failure of a copy's concurrent work (blocks, connections, uploads), kept to be rethrown once the work has
/// drained, and the stop it sends the rest: a cancellation caused by that stop is not a failure of its own.
/// </summary>
internal sealed class FirstFailure(CancellationToken cancellationToken) : IDisposable
{
    private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    private Exception? _error;

    /// <summary>Cancelled at the first failure (or when the caller cancels).</summary>
    public CancellationToken Token => _stop.Token;

    public bool Stopped => _stop.IsCancellationRequested;

    public Exception? Error => Volatile.Read(ref _error);

    public void Fail(Exception failure)
    {
        if (failure is OperationCanceledException && _stop.IsCancellationRequested)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _error, failure, null) is null)
        {
            _stop.Cancel();
        }
    }

    /// <summary>Stops the work without a failure (the copy is being abandoned).</summary>
    public void Stop() => _stop.Cancel();

    public void ThrowIfFailed()
    {
        if (Error is { } error)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }
    }

    public void Dispose() => _stop.Dispose();
}
