using BackupRelay.Messaging;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;

namespace BackupRelay.Functions.Queues;

/// <summary>The way back from a poison queue, both formats (parked by the app, moved by the runtime): admin level, the master key.</summary>
public sealed class PoisonFunctions(PoisonReplay replay)
{
    /// <summary><c>POST /api/queues/{queue}/poison/replay[?limit=1..32]</c>.</summary>
    [Function("ReplayPoison")]
    public Task<IResult> ReplayPoisonAsync([HttpTrigger(AuthorizationLevel.Admin, "post", Route = "queues/{queue}/poison/replay")] HttpRequest request,
        string queue) =>
        replay.HandleAsync(request.HttpContext, queue, request.Query.TryGetValue("limit", out var limit) ? limit.ToString() : null);
}
