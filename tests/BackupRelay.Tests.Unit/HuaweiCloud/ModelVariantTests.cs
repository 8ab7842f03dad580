using System.Net;
using System.Text.Json;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.HuaweiCloud.Json;

namespace BackupRelay.Tests.Unit.HuaweiCloud;

public sealed class ModelVariantTests
{
    [Theory]
    [InlineData("""{"error_code":"GES.7000","error_msg":"m"}""", "GES.7000", "m", null)]
    [InlineData("""{"errorCode":"GES.7049","errorMessage":"m"}""", "GES.7049", "m", null)]
    [InlineData("""{"error_code":"APIG.0301","error_msg":"m","request_id":"r1"}""", "APIG.0301", "m", "r1")]
    [InlineData("""{"code":"CSE.1","message":"m"}""", "CSE.1", "m", null)]
    [InlineData("""{"error":{"code":401,"message":"m","title":"Unauthorized"}}""", "401", "m", null)]
    [InlineData("""{"error":{"error_code":"X.1","error_msg":"m"},"request_id":"r2"}""", "X.1", "m", "r2")]
    [InlineData("""<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>m</Message><RequestId>r3</RequestId></Error>""", "AccessDenied", "m", "r3")]
    [InlineData("not json", null, null, null)]
    [InlineData("", null, null, null)]
    public void Every_error_body_variant_is_read(string body, string? code, string? message, string? requestId) =>
        Assert.Equal((code, message, requestId), HuaweiCloudErrors.Parse(body));

    [Theory]
    [InlineData(400, "GES.7002", HuaweiCloudErrorKind.Conflict)]
    [InlineData(400, "GES.7000", HuaweiCloudErrorKind.NotFound)]
    [InlineData(400, "GES.7007", HuaweiCloudErrorKind.NotFound)]
    [InlineData(404, "GES.0047", HuaweiCloudErrorKind.NotFound)]
    [InlineData(400, "GES.0001", HuaweiCloudErrorKind.Invalid)]
    [InlineData(400, "GES.7001", HuaweiCloudErrorKind.Invalid)]
    [InlineData(408, "GES.7005", HuaweiCloudErrorKind.Transient)]
    [InlineData(400, "GES.7006", HuaweiCloudErrorKind.Transient)]
    [InlineData(500, "GES.7006", HuaweiCloudErrorKind.Transient)]
    [InlineData(503, null, HuaweiCloudErrorKind.Transient)]
    [InlineData(429, "APIG.0308", HuaweiCloudErrorKind.Throttled)]
    [InlineData(401, "APIG.0307", HuaweiCloudErrorKind.Auth)]
    [InlineData(403, null, HuaweiCloudErrorKind.Auth)]
    [InlineData(400, "CSE.00400002", HuaweiCloudErrorKind.Conflict)]
    [InlineData(400, "CSE.00404001", HuaweiCloudErrorKind.NotFound)]
    public void Errors_are_classified(int status, string? code, HuaweiCloudErrorKind kind) =>
        Assert.Equal(kind, HuaweiCloudErrors.Classify((HttpStatusCode)status, code));

    [Fact]
    public void Graph_not_running_codes_are_recognised()
    {
        foreach (var code in new[] { "GES.7001", "GES.7003", "GES.7015" })
        {
            Assert.True(new HuaweiCloudException(HuaweiCloudErrorKind.Invalid, HttpStatusCode.BadRequest, code, "m", null).IsGraphNotRunning);
        }

        Assert.False(new HuaweiCloudException(HuaweiCloudErrorKind.Invalid, HttpStatusCode.BadRequest, "GES.0001", "m", null).IsGraphNotRunning);
    }

    [Theory]
    [InlineData("2021-06-08T13:55:13", "2021-06-08T13:55:13Z")]
    [InlineData("2021-06-08 13:55:13", "2021-06-08T13:55:13Z")]
    [InlineData("2026-11-22T18:00:00+0800", "2026-11-22T10:00:00Z")]
    [InlineData("2026-11-22T18:00:00+08:00", "2026-11-22T10:00:00Z")]
    [InlineData("2020-01-04T09:05:22.701000Z", "2020-01-04T09:05:22.701Z")]
    [InlineData("2018-08-016T10:15:14+0800", "2018-08-16T02:15:14Z")]
    public void Times_parse_in_every_format(string text, string expected) =>
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), HuaweiTime.Parse(text));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("garbage")]
    public void Unparseable_times_are_null(string? text) => Assert.Null(HuaweiTime.Parse(text));

    [Fact]
    public void Link_expiry_falls_back_to_fetch_time_plus_an_hour()
    {
        var fetched = new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);
        Assert.Equal(fetched.AddHours(1), new GesBackupFile { LinkExpiredTime = "garbage" }.ExpiresAt(fetched));
        Assert.Equal(fetched.AddMinutes(30), new GesBackupFile { LinkExpiredTime = "2026-11-22T18:30:00+0800" }.ExpiresAt(fetched));
        Assert.Equal(fetched.AddHours(1), new GesBackupFile { LinkExpiredTime = "2026-11-22T23:30:00+0800" }.ExpiresAt(fetched));
    }

    [Theory]
    [InlineData("pending", GesJobState.Pending, false)]
    [InlineData("running", GesJobState.Running, false)]
    [InlineData("waiting", GesJobState.Waiting, false)]
    [InlineData("success", GesJobState.Success, true)]
    [InlineData("failed", GesJobState.Failed, true)]
    [InlineData("partiallyFailed", GesJobState.PartiallyFailed, true)]
    [InlineData("queued_somewhere", GesJobState.Unknown, false)]
    public void Job_states_and_unknown_values_are_kept(string status, GesJobState state, bool terminal)
    {
        var job = JsonSerializer.Deserialize("""{"job_id":"j","job_progress":0.0,"job_detail":{"x":1},"status":""" + "\"" + status + "\"}", HuaweiSnakeJson.Default.GesJob)!;
        Assert.Equal(status, job.Status);
        Assert.Equal(state, job.State);
        Assert.Equal(terminal, job.IsTerminal);
    }

    [Theory]
    [InlineData("""{"progress":20,"time":123}""", 20, 123L)]
    [InlineData("""{"progress":"20","time":"123"}""", 20, 123L)]
    [InlineData("""{"progress":"","time":null}""", null, null)]
    public void Cse_numbers_come_as_numbers_or_strings(string json, int? progress, long? time)
    {
        var record = JsonSerializer.Deserialize(json, HuaweiCamelJson.Default.CseRestoreRecord)!;
        Assert.Equal(progress, record.Progress);
        Assert.Equal(time, record.Time);
    }

    [Fact]
    public void Unknown_fields_are_ignored()
    {
        var backup = JsonSerializer.Deserialize("""{"backup_count":1,"backup_list":[{"id":"b","new_field":{"a":[1]},"size":"7"}]}""", HuaweiSnakeJson.Default.GesBackupPage)!;
        Assert.Equal(7, backup.BackupList[0].Size);
    }

    [Theory]
    [InlineData("cn-north-4", "https://ges.cn-north-4.myhuaweicloud.com/")]
    [InlineData("ap-southeast-1", "https://ges.ap-southeast-1.myhuaweicloud.com/")]
    [InlineData("eu-west-101", "https://ges.eu-west-101.myhuaweicloud.eu/")]
    public void Endpoints_default_per_region(string region, string expected) =>
        Assert.Equal(new Uri(expected), new HuaweiCloudOptions { Region = region }.GesEndpoint);

    [Theory]
    [InlineData("abc123", true)]
    [InlineData("4c5f882d-a813-4d78-a8e3-6d3212ddd121", true)]
    [InlineData("g1_20210609203323_auto", true)]
    [InlineData("", false)]
    [InlineData("..", false)]
    [InlineData("a/b", false)]
    [InlineData("a?b", false)]
    [InlineData("a%2Fb", false)]
    [InlineData("a b", false)]
    [InlineData(".hidden", false)]
    public void Ids_must_be_path_safe(string id, bool valid)
    {
        Assert.Equal(valid, HuaweiCloudIds.IsValidId(id));
        if (!valid)
        {
            var error = Assert.Throws<ArgumentException>(() => HuaweiCloudIds.Id(id, "graphId"));
            Assert.Equal("graphId", error.ParamName);
        }
    }

    [Theory]
    [InlineData("0a1b2c3d4e5f40718293a4b5c6d7e8f9", true)]
    [InlineData("abc-def", false)]
    [InlineData("", false)]
    public void Project_ids_are_letters_and_digits_up_to_64(string id, bool valid)
    {
        if (valid)
        {
            Assert.Equal(id, HuaweiCloudIds.ProjectId(id));
        }
        else
        {
            Assert.Throws<ArgumentException>(() => HuaweiCloudIds.ProjectId(id));
        }

        Assert.Throws<ArgumentException>(() => HuaweiCloudIds.ProjectId(new string('a', 65)));
    }

    [Fact]
    public void A_backup_page_without_backup_list_is_empty_not_null()
    {
        var page = JsonSerializer.Deserialize("""{"backup_count":0}""", HuaweiSnakeJson.Default.GesBackupPage)!;
        Assert.NotNull(page.BackupList);
        Assert.Empty(page.BackupList);
        Assert.Equal(0, page.BackupCount);
    }

    [Fact]
    public void An_error_body_detail_is_kept_with_the_message()
    {
        var (code, message, _) = HuaweiCloudErrors.Parse("""{"error_code":"CSE.00400003","error_msg":"Invalid backup.","detail":"backup_id"}""");
        Assert.Equal("CSE.00400003", code);
        Assert.Equal("Invalid backup. (detail: backup_id)", message);
        var (_, plain, _) = HuaweiCloudErrors.Parse("""{"error_code":"GES.7000","error_msg":"Graph not found."}""");
        Assert.Equal("Graph not found.", plain);
    }
}
