using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace BackupRelay.HuaweiCloud.Json;

/// <summary>A long sent as a number or as a string (<c>"time": "123"</c> in the CSE page); empty string → null.</summary>
public sealed class FlexibleInt64Converter : JsonConverter<long?>
{
    public override long? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Null => null,
        JsonTokenType.Number when reader.TryGetInt64(out var n) => n,
        JsonTokenType.Number => (long)reader.GetDouble(),
        JsonTokenType.String => ParseString(reader.GetString()!),
        _ => throw new JsonException($"Expected a number or a numeric string, got {reader.TokenType}."),
    };

    public override void Write(Utf8JsonWriter writer, long? value, JsonSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            writer.WriteNumberValue(value.Value);
        }
    }

    private static long? ParseString(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
        {
            return n;
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
            ? (long)d
            : throw new JsonException($"'{text}' is not a number.");
    }
}

/// <summary>An int sent as a number or as a string (<c>"progress": "20"</c>).</summary>
public sealed class FlexibleInt32Converter : JsonConverter<int?>
{
    private static readonly FlexibleInt64Converter Inner = new();

    public override int? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        Inner.Read(ref reader, typeof(long?), options) is { } n ? checked((int)n) : null;

    public override void Write(Utf8JsonWriter writer, int? value, JsonSerializerOptions options) =>
        Inner.Write(writer, value, options);
}
