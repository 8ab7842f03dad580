using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace BackupRelay.Http;

/// <summary>
/// The standalone host's stand-in for <c>authLevel: function</c>: a configured key in
/// <c>x-functions-key</c> or <c>?code=</c>, compared in constant time.
/// </summary>
public sealed class FunctionKeyFilter(IOptions<HttpOptions> options) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var settings = options.Value;
        if (settings.FunctionKeys.Count == 0 && settings.AllowAnonymousLocalDevelopment)
        {
            return await next(context);
        }

        var request = context.HttpContext.Request;
        var given = request.Headers["x-functions-key"].ToString();
        if (given.Length == 0)
        {
            given = request.Query["code"].ToString();
        }

        if (given.Length == 0)
        {
            return TypedResults.Problem("A function key is required (x-functions-key header or code query parameter).", statusCode: 401, title: "Missing key");
        }

        var givenBytes = Encoding.UTF8.GetBytes(given);
        var match = false;
        foreach (var key in settings.FunctionKeys)
        {
            match |= CryptographicOperations.FixedTimeEquals(givenBytes, Encoding.UTF8.GetBytes(key));
        }

        return match ? await next(context) : TypedResults.Problem("The function key is not valid.", statusCode: 401, title: "Invalid key");
    }
}
