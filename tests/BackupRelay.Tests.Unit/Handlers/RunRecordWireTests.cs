using System.Text.Json;
using BackupRelay.Runs;

namespace BackupRelay.Tests.Unit.Handlers;

/// <summary>Steps and kinds are enums in code and the same strings on the wire and in stored records.</summary>
public sealed class RunRecordWireTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "TestData", "run-records");

    public static TheoryData<string> Records() => [.. Directory.GetFiles(Folder, "*.json").Select(Path.GetFileName).OfType<string>()];

    [Theory]
    [MemberData(nameof(Records))]
    public void A_record_written_by_the_previous_version_reads_and_writes_back_byte_for_byte(string file)
    {
        var stored = File.ReadAllText(Path.Combine(Folder, file));
        var run = JsonSerializer.Deserialize(stored, RunRecordJson.Default.RunRecord)!;
        Assert.Equal(stored, JsonSerializer.Serialize(run, RunRecordJson.Default.RunRecord));
    }

    [Fact]
    public void The_stored_records_name_every_kind_and_every_step()
    {
        var runs = Directory.GetFiles(Folder, "*.json").Select(f => JsonSerializer.Deserialize(File.ReadAllText(f), RunRecordJson.Default.RunRecord)!).ToList();
        Assert.Equal(Enum.GetValues<RunKind>().Order(), runs.Select(r => r.Kind).Distinct().Order());
        var named = runs.Select(r => r.Step.Name()).Concat(runs.SelectMany(r => r.Errors).Select(e => e.Step)).ToHashSet();
        Assert.All(Enum.GetValues<RunStep>(), step => Assert.Contains(step.Name(), named));
    }

    [Fact]
    public void Every_step_and_kind_has_one_name_outside_json_the_same_as_in_it()
    {
        foreach (var step in Enum.GetValues<RunStep>())
        {
            Assert.Equal(JsonSerializer.Serialize(step), $"\"{step.Name()}\"");
            Assert.True(RunNames.TryParseStep(step.Name(), out var parsed) && parsed == step);
        }

        foreach (var kind in Enum.GetValues<RunKind>())
        {
            Assert.Equal(JsonSerializer.Serialize(kind), $"\"{kind.Name()}\"");
            Assert.True(RunNames.TryParseKind(kind.Name(), out var parsed) && parsed == kind);
        }

        Assert.False(RunNames.TryParseStep("polling", out _));
        Assert.False(RunNames.TryParseKind("Backup", out _));
    }

    [Fact]
    public void A_record_with_a_step_no_version_wrote_is_refused_not_misread()
    {
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize("""{"id":"r","step":"polling"}""", RunRecordJson.Default.RunRecord));
    }
}
