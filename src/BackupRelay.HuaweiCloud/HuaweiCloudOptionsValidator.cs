using Microsoft.Extensions.Options;

namespace BackupRelay.HuaweiCloud;

/// <summary>Start-up validation: each failure names the app setting to fix (<c>HuaweiCloud__...</c>).</summary>
public sealed class HuaweiCloudOptionsValidator : IValidateOptions<HuaweiCloudOptions>
{
    private const string Prefix = HuaweiCloudOptions.SectionName + "__";

    public ValidateOptionsResult Validate(string? name, HuaweiCloudOptions options)
    {
        var failures = new List<string>();
        SettingAnnotations.Validate(options, Prefix, failures);
        SettingAnnotations.Validate(options.Resilience, Prefix + "Resilience__", failures);

        foreach (var (setting, uri) in new[] { ("Iam", options.Endpoints.Iam), ("Ges", options.Endpoints.Ges), ("Cse", options.Endpoints.Cse) })
        {
            if (uri is not null && (!uri.IsAbsoluteUri || uri.Scheme is not ("https" or "http")))
            {
                failures.Add($"{Prefix}Endpoints__{setting} must be an absolute http(s) URL.");
            }
        }

        var auth = options.Auth;
        switch (auth.EffectiveMode)
        {
            case HuaweiCloudAuthMode.AkSk:
                Require(auth.AccessKey, "AccessKey");
                Require(auth.SecretKey, "SecretKey");
                break;
            default:
                Require(auth.UserName, "UserName");
                Require(auth.Password, "Password");
                Require(auth.DomainName, "DomainName");
                break;
        }

        var r = options.Resilience;
        foreach (var (setting, value) in new[]
                 {
                     ("BaseDelay", r.BaseDelay), ("MaxDelay", r.MaxDelay), ("AttemptTimeout", r.AttemptTimeout),
                     ("TotalTimeout", r.TotalTimeout), ("BreakSamplingDuration", r.BreakSamplingDuration), ("BreakDuration", r.BreakDuration),
                 })
        {
            if (value <= TimeSpan.Zero)
            {
                failures.Add($"{Prefix}Resilience__{setting} must be a positive time span (e.g. 00:00:30).");
            }
        }

        if (r.AttemptTimeout > r.TotalTimeout)
        {
            failures.Add($"{Prefix}Resilience__AttemptTimeout must not exceed {Prefix}Resilience__TotalTimeout.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);

        void Require(string? value, string setting)
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                failures.Add($"{Prefix}Auth__{setting} is required for {auth.EffectiveMode} authentication.");
            }
        }
    }
}
