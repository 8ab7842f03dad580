using System.Globalization;
using Microsoft.Azure.Functions.Worker.Grpc.Messages;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// Decides, for the local host's <c>KillWorkerBeforeAnswer</c> hook, which answers the worker "dies"
/// before giving: the first delivery of a queue message that succeeded, up to a number per function.
/// </summary>
public sealed class WorkerKiller(int perFunction, Func<string, bool>? only = null)
{
    private readonly Dictionary<string, int> _kills = [];

    public int Kills(string function)
    {
        lock (_kills)
        {
            return _kills.GetValueOrDefault(function);
        }
    }

    public bool ShouldKill(string function, InvocationRequest request, InvocationResponse response)
    {
        if (response.Result.Status != StatusResult.Types.Status.Success
            || !request.TriggerMetadata.TryGetValue("DequeueCount", out var count)
            || long.Parse(count.Json, CultureInfo.InvariantCulture) != 1
            || only?.Invoke(function) == false)
        {
            return false;
        }

        lock (_kills)
        {
            var kills = _kills.GetValueOrDefault(function);
            if (kills >= perFunction)
            {
                return false;
            }

            _kills[function] = kills + 1;
            return true;
        }
    }
}
