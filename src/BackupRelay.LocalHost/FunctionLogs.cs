namespace BackupRelay.LocalHost;

/// <summary>
/// Where the worker's user logs land, by the Functions host's rule: a log whose invocation id names an invocation the
/// host is running belongs to that function (<c>Function.&lt;name&gt;.User</c>, the invocation id and function name in
/// scope, as the host writes them to Application Insights); any other user log is dropped by the real host. Here it is
/// written under <see cref="UnattributedCategory"/> (local runs still show it) and counted, so tests can assert that the
/// app's logs inside an invocation carry its id.
/// </summary>
public sealed partial class FunctionLogs(ILoggerFactory loggers)
{
    /// <summary>The category of user logs that named no running invocation (the real host drops these).</summary>
    public const string UnattributedCategory = "Host.Worker.Unattributed";

    private readonly ILogger _unattributed = loggers.CreateLogger(UnattributedCategory);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ILogger> _functions = new(StringComparer.Ordinal);
    private long _attributed;
    private long _unattributedCount;

    /// <summary>User logs attributed to a running invocation.</summary>
    public long AttributedCount => Interlocked.Read(ref _attributed);

    /// <summary>User logs that named no running invocation.</summary>
    public long UnattributedCount => Interlocked.Read(ref _unattributedCount);

    public static string CategoryFor(string function) => $"Function.{function}.User";

    internal void Attributed(string function, string invocationId, LogLevel level, string category, string message)
    {
        Interlocked.Increment(ref _attributed);
        var logger = _functions.GetOrAdd(function, name => loggers.CreateLogger(CategoryFor(name)));
        if (!logger.IsEnabled(level))
        {
            return;
        }

        using (logger.BeginScope(new Dictionary<string, object> { ["InvocationId"] = invocationId, ["FunctionName"] = function }))
        {
            Log.Attributed(logger, level, category, message);
        }
    }

    internal void Unattributed(LogLevel level, string category, string message)
    {
        Interlocked.Increment(ref _unattributedCount);
        if (_unattributed.IsEnabled(level))
        {
            Log.Unattributed(_unattributed, level, category, message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1002, Message = "{Category}: {Message}")]
        public static partial void Attributed(ILogger logger, LogLevel level, string category, string message);

        [LoggerMessage(EventId = 1003, Message = "{Category}: {Message}")]
        public static partial void Unattributed(ILogger logger, LogLevel level, string category, string message);
    }
}
