// Parameters for infra/main.bicep. Deploy with:
//   az deployment group create -g <resource group> -f infra/main.bicep -p infra/main.bicepparam
using './main.bicep'

// Derives every resource name (3-12 lower-case letters and digits).
param name = 'backuprelay'

// The Huawei Cloud region and project your graphs live in.
param huaweiRegion = 'cn-north-4'
param huaweiProjectId = '0a1b2c3d4e5f40718293a4b5c6d7e8f9'

// IAM password auth: the user and its account (domain). Its password goes into Key Vault as
// 'huawei-password' after deployment. Leave the user empty to use AK/SK instead
// ('huawei-access-key' and 'huawei-secret-key' secrets).
param huaweiUserName = 'backup-relay'
param huaweiDomainName = 'my-account'

// The GES graphs to back up, and when (NCRONTAB, UTC, with seconds).
param graphIds = [
  '4c5f882d-a813-4d78-a8e3-6d3212ddd121'
]
param backupSchedule = '0 0 2 * * *'

// Restore drills (docs/operations.md): each graph's newest verified copy restored on a schedule into a
// graph kept for drills (overwritten each time), to prove it comes back. None by default; for example:
//   param drills = { '4c5f882d-a813-4d78-a8e3-6d3212ddd121': { schedule: '0 0 4 * * 0', targetGraphId: '<drill graph id>' } }
param drills = {}

// Where copies land, how long deleted ones are kept, and how long they cannot be changed at all
// (0: no immutability; with it, not even an operator can delete a backup before it expires).
param destinationContainer = 'ges-backups'
param softDeleteDays = 30
param immutabilityDays = 0

// Lifecycle by age (0 = never): cool after 30 days; archive (hours to rehydrate before a restore) and
// delete are off. Immutability wins over delete until its retention ends; a deleted backup stays
// softDeleteDays as soft-deleted.
param coolAfterDays = 30
param archiveAfterDays = 0
param deleteAfterDays = 0

// Who is alerted when a graph is stale, no backup verified for noBackupAlertHours, a run fails, or a
// message is parked. The webhook URL is secure: pass it on the command line, e.g.
//   az deployment group create ... -p alertWebhookUrl='https://...'
param alertEmails = [
  'platform-oncall@example.com'
]
param noBackupAlertHours = 48

param maximumInstanceCount = 40

// Where the app (.NET 10 isolated worker) runs. Flex Consumption where the region lists dotnet-isolated 10.0:
//   az functionapp list-flexconsumption-runtimes --location <region> --runtime dotnet-isolated
// Elastic Premium (EP1, Linux) where it does not.
param hostingPlan = 'FlexConsumption'
param dotnetVersion = '10.0'
