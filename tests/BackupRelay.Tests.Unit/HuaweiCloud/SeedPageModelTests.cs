using System.Text.Json;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Json;

namespace BackupRelay.Tests.Unit.HuaweiCloud;

/// <summary>The five pages' example responses deserialize with the client's models, values asserted.</summary>
public sealed class SeedPageModelTests
{
    private static string Page(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "seed-pages", name));

    [Fact]
    public void Page_000_import_job_and_camel_case_error()
    {
        Assert.Equal("ff8080815f9a3c84015f9a438ff70001", JsonSerializer.Deserialize(Page("000-import-response-200.json"), HuaweiSnakeJson.Default.JobIdResult)!.JobId);
        var (code, message, _) = HuaweiCloudErrors.Parse(Page("000-import-response-400.json"));
        Assert.Equal("GES.7049", code);
        Assert.Equal("The parameter [import_path] is not exist.", message);
    }

    [Fact]
    public void Page_001_add_backup_without_backup_id_and_its_error()
    {
        var result = JsonSerializer.Deserialize(Page("001-add-backup-response-200.json"), HuaweiSnakeJson.Default.AddBackupResult)!;
        Assert.Equal("ff8080815f9a3c84015f9a438ff70001", result.JobId);
        Assert.Null(result.BackupId);
        var (code, message, _) = HuaweiCloudErrors.Parse(Page("001-add-backup-response-400.json"));
        Assert.Equal("GES.7000", code);
        Assert.Equal("The graph does not exist or has been deleted.", message);
        Assert.Equal(HuaweiCloudErrorKind.NotFound, HuaweiCloudErrors.Classify(System.Net.HttpStatusCode.BadRequest, code));
    }

    [Fact]
    public void Page_002_backup_list_every_value()
    {
        var page = JsonSerializer.Deserialize(Page("002-list-backups-response-200.json"), HuaweiSnakeJson.Default.GesBackupPage)!;
        Assert.Equal(2, page.BackupCount);
        var first = page.BackupList[0];
        Assert.Equal("ada3e720-ab87-48cb-bff7-3ec5ae1a9652", first.Id);
        Assert.Equal("ges060803_nodelete-20210608135513", first.Name);
        Assert.Equal("manual", first.BackupMethod);
        Assert.Equal("4c5f882d-a813-4d78-a8e3-6d3212ddd121", first.GraphId);
        Assert.Equal("ges060803_nodelete", first.GraphName);
        Assert.Equal("200", first.GraphStatus);
        Assert.Equal("1", first.GraphSizeTypeIndex);
        Assert.Equal("2.2.21", first.DataStoreVersion);
        Assert.Equal("x86_64", first.Arch);
        Assert.Equal("success", first.Status);
        Assert.Equal(1623160513000, first.StartTimestamp);
        Assert.Equal("2021-06-08T13:55:13", first.StartTime);
        Assert.Equal(1623160568000, first.EndTimestamp);
        Assert.Equal("2021-06-08T13:56:08", first.EndTime);
        Assert.Equal(1, first.Size);
        Assert.Equal(54, first.Duration);
        Assert.Null(first.Encrypted);
        Assert.Equal(new DateTimeOffset(2021, 6, 8, 13, 55, 13, TimeSpan.Zero), first.StartedAt);
        Assert.Equal(new DateTimeOffset(2021, 6, 8, 13, 56, 8, TimeSpan.Zero), first.EndedAt);

        var second = page.BackupList[1];
        Assert.Equal("7ed3f51d-816d-4651-9129-fe21b64b5c91", second.Id);
        Assert.Equal("ges060803_nodelete_20210609203323_auto", second.Name);
        Assert.Equal("auto", second.BackupMethod);
        Assert.Equal(1623242004000, second.StartTimestamp);
        Assert.Equal("2021-06-09T12:33:24", second.StartTime);
        Assert.Equal(0, second.Duration);

        var (code, message, _) = HuaweiCloudErrors.Parse(Page("002-list-backups-response-404.json"));
        Assert.Equal("GES.0047", code);
        Assert.Equal("Cluster does not exist or has been deleted.", message);
    }

    [Fact]
    public void Page_003_download_links_with_the_malformed_expiry()
    {
        var files = JsonSerializer.Deserialize(Page("003-backup-files-response-200.json"), HuaweiSnakeJson.Default.GesBackupFiles)!;
        Assert.Equal("string", files.Bucket);
        var file = Assert.Single(files.Files);
        Assert.Equal("43e4feaab48f11e89039fa163ebaa7e4br01.xxx", file.Name);
        Assert.Equal(2803, file.Size);
        Assert.Equal("https://obs.domainname.com/rdsbucket.username.1/xxxxxx", file.DownloadLink);
        Assert.Equal("2018-08-016T10:15:14+0800", file.LinkExpiredTime);
        Assert.Equal(new DateTimeOffset(2018, 8, 16, 2, 15, 14, TimeSpan.Zero), HuaweiTime.Parse(file.LinkExpiredTime));

        var (code, message, _) = HuaweiCloudErrors.Parse(Page("003-backup-files-response-400.json"));
        Assert.Equal("GES.7006", code);
        Assert.Equal("The underlying graph engine has internal error.", message);
        Assert.Equal(HuaweiCloudErrorKind.Transient, HuaweiCloudErrors.Classify(System.Net.HttpStatusCode.BadRequest, code));
    }

    [Fact]
    public void Page_004_restore_record_with_numbers_as_strings()
    {
        var record = JsonSerializer.Deserialize(Page("004-restore-response-200.json"), HuaweiCamelJson.Default.CseRestoreRecord)!;
        Assert.Equal("string", record.Id);
        Assert.Equal("test", record.Name);
        Assert.Equal("string", record.Description);
        Assert.Equal("engineId", record.EngineId);
        Assert.Equal("backupId", record.BackupId);
        Assert.Equal("backupName", record.BackupName);
        Assert.Equal("RecoveringData", record.Status);
        Assert.Equal(20, record.Progress);
        Assert.Equal(123, record.Time);
        Assert.Equal("string", record.Reason);
        Assert.False(record.IsFailed);

        var request = JsonSerializer.Serialize(new BackupRelay.HuaweiCloud.Cse.CseRestoreRequest("string", "string"), HuaweiCamelJson.Default.CseRestoreRequest);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(Page("004-restore-request.json")), System.Text.Json.Nodes.JsonNode.Parse(request)));
    }

    [Fact]
    public void Page_000_import_request_serializes_as_documented()
    {
        var json = JsonSerializer.Serialize(new BackupRelay.HuaweiCloud.Ges.ImportBackupRequest("{obs_path}"), HuaweiSnakeJson.Default.ImportBackupRequest);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(Page("000-import-request.json")), System.Text.Json.Nodes.JsonNode.Parse(json)));
    }
}
