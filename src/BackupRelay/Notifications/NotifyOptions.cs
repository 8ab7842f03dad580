using Microsoft.Extensions.Options;

namespace BackupRelay.Notifications;

/// <summary>The outgoing webhook (app settings <c>Notify__*</c>); off unless <see cref="Url"/> is set.</summary>
public sealed class NotifyOptions
{
    public const string SectionName = "Notify";

    /// <summary>Where every run end and every graph turning stale is POSTed (https, or http on loopback).</summary>
    public string? Url { get; set; }

    /// <summary>Signs each event as incoming webhooks are signed (<c>X-BackupRelay-Signature: t=…,v2=…</c>).</summary>
    public string? Secret { get; set; }

    /// <summary>Deliveries tried before the event is parked (with backoff: 2 s, 4 s, … up to 15 min apart).</summary>
    public int MaxAttempts { get; set; } = 12;

    /// <summary>How long one delivery may take.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public bool Enabled => !string.IsNullOrWhiteSpace(Url);
}
public sealed class NotifyOptionsValidator : IValidateOptions<NotifyOptions>
{
    public ValidateOptionsResult Validate(string? name, NotifyOptions options)
    {
        var failures = new List<string>();
        if (options.Enabled)
        {
            if (!Uri.TryCreate(options.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttps && !(url.Scheme == Uri.UriSchemeHttp && url.IsLoopback)))
            {
                failures.Add("Notify__Url must be an absolute https URL (http only on loopback).");
            }

            if (string.IsNullOrEmpty(options.Secret) || options.Secret.Length < 16)
            {
                failures.Add("Notify__Secret must be set (at least 16 characters) when Notify__Url is.");
            }
        }

        if (options.MaxAttempts is < 1 or > 50)
        {
            failures.Add("Notify__MaxAttempts must be between 1 and 50.");
        }

        if (options.Timeout <= TimeSpan.Zero || options.Timeout > TimeSpan.FromMinutes(2))
        {
            failures.Add("Notify__Timeout must be longer than zero and at most 00:02:00.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
