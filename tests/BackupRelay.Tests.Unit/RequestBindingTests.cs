using System.Text;
using BackupRelay.Http;

namespace BackupRelay.Tests.Unit;

public class RequestBindingTests
{
    private static (T? Body, Dictionary<string, string[]> Errors) Bind<T>(string json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
        where T : class, IRequestBody
    {
        var errors = new Dictionary<string, string[]>();
        return (RequestBinding.Bind(Encoding.UTF8.GetBytes(json), type, errors), errors);
    }

    [Fact]
    public void A_restore_body_binds_to_its_record_with_the_obs_path_as_GES_takes_it()
    {
        var (body, errors) = Bind("""{"backupId":"b1","sourceGraph":"orders","obsPath":"obs://bucket/x","acceptUnverified":true,"acceptIncomplete":null}""",
            RequestBodyJson.Default.RestoreFromCopyBody);
        Assert.Empty(errors);
        Assert.Equal(new RestoreFromCopyBody("b1", "orders", "obs://bucket/x", true, null), body);
        Assert.Equal("bucket/x/", body!.NormalizedObsPath);
    }

    [Fact]
    public void An_empty_body_binds_as_an_empty_object_and_a_required_field_is_then_named()
    {
        Assert.Empty(Bind("", RequestBodyJson.Default.BackupNowBody).Errors);
        Assert.Empty(Bind("", RequestBodyJson.Default.EngineRestoreBody).Errors);
        var (body, errors) = Bind("", RequestBodyJson.Default.ImportBody);
        Assert.Contains("required", Assert.Single(errors["import_path"]), StringComparison.Ordinal);
        Assert.NotNull(body);
    }

    [Theory]
    [InlineData("""{"backupId":"b1","acceptUnverifed":true}""", "acceptUnverifed", "not a field")]
    [InlineData("""{"BackupId":"b1"}""", "BackupId", "case-sensitive")]
    [InlineData("""{"backupId":"b1","backupId":"b2"}""", "backupId", "twice")]
    [InlineData("""{"backupId":"b1","acceptUnverified":"yes"}""", "acceptUnverified", "true or false")]
    [InlineData("""{"backupId":42}""", "backupId", "must be a string")]
    [InlineData("""{"backupId":"b1","sourceGraph":{"a":1}}""", "sourceGraph", "must be a string")]
    [InlineData("""{"backupId":"b1","odd name":1}""", "odd name", "not a field")]
    [InlineData("""{"backupId":""}""", "backupId", "1-128 characters")]
    [InlineData("""{"backupId":"../x"}""", "backupId", "letters, digits")]
    [InlineData("""{"backupId":"b1","obsPath":"http://elsewhere/x"}""", "obsPath", "an OBS path")]
    [InlineData("[1,2]", "body", "a JSON object")]
    [InlineData("null", "body", "a JSON object")]
    [InlineData("\"text\"", "body", "a JSON object")]
    [InlineData("not json", "body", "not valid JSON")]
    [InlineData("""{"backupId":"b1",""", "body", "not valid JSON")]
    public void What_the_binding_refuses_is_named_by_its_field(string json, string field, string says)
    {
        var (_, errors) = Bind(json, RequestBodyJson.Default.RestoreFromCopyBody);
        Assert.Contains(says, Assert.Single(errors[field]), StringComparison.Ordinal);
    }

    [Fact]
    public void A_body_that_is_not_UTF8_is_named_as_the_body()
    {
        var errors = new Dictionary<string, string[]>();
        Assert.Null(RequestBinding.Bind([0x7b, 0xff, 0x7d], RequestBodyJson.Default.ImportBody, errors));
        Assert.Contains("UTF-8", Assert.Single(errors["body"]), StringComparison.Ordinal);
    }

    [Fact]
    public void A_field_of_a_request_that_takes_none_is_refused_by_name()
    {
        var (_, errors) = Bind("""{"graph":"x"}""", RequestBodyJson.Default.BackupNowBody);
        Assert.Contains("takes no fields", Assert.Single(errors["graph"]), StringComparison.Ordinal);
    }

    [Fact]
    public void The_import_path_keeps_its_wire_name()
    {
        var (body, errors) = Bind("""{"import_path":"obs://bucket/p/"}""", RequestBodyJson.Default.ImportBody);
        Assert.Empty(errors);
        Assert.Equal("bucket/p/", body!.ObsPath);
        Assert.Contains("not a field", Assert.Single(Bind("""{"importPath":"bucket/p/"}""", RequestBodyJson.Default.ImportBody).Errors["importPath"]),
            StringComparison.Ordinal);
    }
}
