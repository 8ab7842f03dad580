using System.ComponentModel.DataAnnotations;

namespace BackupRelay.HuaweiCloud;

/// <summary>DataAnnotations failures worded with the app setting's name as a user writes it (<c>Copy__MaxConcurrency</c>).</summary>
public static class SettingAnnotations
{
    /// <summary>Adds one line per failed attribute of <paramref name="instance"/>, whose settings start with <paramref name="prefix"/> (<c>Copy__</c>).</summary>
    public static void Validate(object instance, string prefix, List<string> failures)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(instance, new ValidationContext(instance), results, validateAllProperties: true);
        foreach (var result in results)
        {
            var member = result.MemberNames.FirstOrDefault() ?? "";
            var message = result.ErrorMessage ?? "is not valid";

            // "The field MaxConcurrency must be between 1 and 64." → "Copy__MaxConcurrency must be between 1 and 64."
            var field = $"The field {member} ";
            failures.Add(message.StartsWith(field, StringComparison.Ordinal)
                ? prefix + member + " " + message[field.Length..]
                : message.StartsWith($"The {member} field ", StringComparison.Ordinal)
                    ? prefix + member + " " + message[$"The {member} field ".Length..]
                    : $"{prefix}{member} {message}");
        }
    }
}
