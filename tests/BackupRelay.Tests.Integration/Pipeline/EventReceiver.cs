using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>A webhook receiver for the app's notifications (<c>Notify__Url</c>): every event it was sent, in order.</summary>
public sealed class EventReceiver(WebApplication app, string url, ConcurrentQueue<JsonNode> events) : IAsyncDisposable
{
    public string Url { get; } = url;

    public ConcurrentQueue<JsonNode> Events { get; } = events;

    public static async Task<EventReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var events = new ConcurrentQueue<JsonNode>();
        app.MapPost("/hook", async (HttpContext context) =>
        {
            events.Enqueue((await JsonNode.ParseAsync(context.Request.Body))!);
            return Results.NoContent();
        });
        await app.StartAsync();
        return new EventReceiver(app, app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/hook", events);
    }

    /// <summary>The events of type <paramref name="type"/>, once at least one arrived (or 30 s passed).</summary>
    public async Task<List<JsonNode>> OfTypeAsync(string type)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && !Events.Any(e => e["type"]!.GetValue<string>() == type))
        {
            await Task.Delay(200);
        }

        return [.. Events.Where(e => e["type"]!.GetValue<string>() == type)];
    }

    public ValueTask DisposeAsync() => app.DisposeAsync();
}
