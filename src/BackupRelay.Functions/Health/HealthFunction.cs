using BackupRelay.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;

namespace BackupRelay.Functions.Health;

/// <summary><c>GET /api/health</c> (anonymous): storage, Huawei Cloud, the destination and stale graphs.</summary>
public sealed class HealthFunction(HealthEndpoint health)
{
    [Function("Health")]
    public Task<IResult> HealthAsync([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "health")] HttpRequest request) =>
        health.HandleAsync();
}
