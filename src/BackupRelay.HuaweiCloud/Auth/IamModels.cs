namespace BackupRelay.HuaweiCloud.Auth;

// POST /v3/auth/tokens: password identity, project scope.

public sealed record IamTokenRequest(IamAuth Auth);
public sealed record IamAuth(IamIdentity Identity, IamScope Scope);
public sealed record IamIdentity(IReadOnlyList<string> Methods, IamPassword Password);
public sealed record IamPassword(IamUser User);
public sealed record IamUser(string Name, string Password, IamDomain Domain);
public sealed record IamDomain(string Name);
public sealed record IamScope(IamProject Project);
public sealed record IamProject(string? Id, string? Name);

public sealed record IamTokenResponse(IamToken? Token);
public sealed record IamToken(string? ExpiresAt, string? IssuedAt);
