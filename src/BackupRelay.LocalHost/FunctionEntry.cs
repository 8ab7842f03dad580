using System.Text.Json.Nodes;
using Microsoft.Azure.Functions.Worker.Grpc.Messages;

namespace BackupRelay.LocalHost;

/// <summary>One function as the worker indexed it: its id, name and trigger binding (raw JSON, as the runtime reads it).</summary>
public sealed record FunctionEntry(string Id, string Name, JsonObject Trigger, RpcFunctionMetadata Metadata)
{
    public string TriggerType => Trigger["type"]?.GetValue<string>() ?? "";
    public string BindingName => Trigger["name"]?.GetValue<string>() ?? "";
    public string? Property(string name) => Trigger[name]?.GetValue<string>();

    public static FunctionEntry From(RpcFunctionMetadata metadata)
    {
        var trigger = metadata.RawBindings.Select(raw => JsonNode.Parse(raw)!.AsObject())
            .First(b => b["type"]?.GetValue<string>()?.EndsWith("Trigger", StringComparison.OrdinalIgnoreCase) == true);
        return new FunctionEntry(metadata.FunctionId, metadata.Name, trigger, metadata);
    }
}
