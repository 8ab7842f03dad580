// BackupRelay on Azure: one resource group holding a Linux function app, .NET 10 isolated worker
// (dotnet-isolated; on Flex Consumption, or on Elastic Premium EP1 where Flex does not list it), its storage (queues, run records, deployment package), a user-assigned
// identity with only the roles it needs, the destination storage for the copied backups (soft
// delete, optional time-based immutability, and a role that cannot delete), Key Vault for the
// Huawei Cloud credentials, and Application Insights + Log Analytics. No account keys in settings.
targetScope = 'resourceGroup'

@description('Short name used to derive resource names (lower-case letters and digits).')
@minLength(3)
@maxLength(12)
param name string

param location string = resourceGroup().location

@description('Huawei Cloud region, e.g. cn-north-4.')
param huaweiRegion string

@description('Huawei Cloud project id (letters and digits).')
param huaweiProjectId string

@description('IAM user name (password auth). Leave empty to use AK/SK.')
param huaweiUserName string = ''

@description('IAM account (domain) name of that user.')
param huaweiDomainName string = ''

@description('GES graph ids to back up.')
param graphIds array

@description('Restore drills, keyed by graph id (one of graphIds): { \'<graph id>\': { schedule: \'0 0 4 * * 0\', targetGraphId: \'<a graph kept for drills>\', restoreTarget: \'02:00:00\' (optional: the longest a restore may take) } }. See docs/operations.md.')
param drills object = {}

@description('NCRONTAB schedule (UTC, six fields).')
param backupSchedule string = '0 0 2 * * *'

@description('Destination container for the copied backups.')
param destinationContainer string = 'ges-backups'

@description('Days deleted blobs and containers are kept (soft delete).')
@minValue(1)
@maxValue(365)
param softDeleteDays int = 30

@description('Days copied backups cannot be changed or deleted (time-based retention); 0 turns immutability off.')
@minValue(0)
@maxValue(146000)
param immutabilityDays int = 0

@description('Days after which copied backups move to the cool tier; 0 keeps them hot.')
@minValue(0)
param coolAfterDays int = 30

@description('Days after which copied backups move to the archive tier (hours to rehydrate before a restore); 0 never archives.')
@minValue(0)
param archiveAfterDays int = 0

@description('Days after which copied backups are deleted (then kept softDeleteDays as soft-deleted); 0 keeps them.')
@minValue(0)
param deleteAfterDays int = 0

@description('E-mail addresses alerted when a graph is stale, a run fails or a message is parked.')
param alertEmails array = []

@description('A webhook (e.g. a chat or paging integration) alerted likewise; empty for none. It may carry a token: secure.')
@secure()
param alertWebhookUrl string = ''

@description('Hours without a verified backup before the "no verified backup" alert fires (the alert looks back at most 48 h).')
@minValue(1)
@maxValue(48)
param noBackupAlertHours int = 48

@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('FlexConsumption (FC1), or ElasticPremium (EP1, Linux), which runs dotnet-isolated in every region. Check Flex first: az functionapp list-flexconsumption-runtimes --location <region> --runtime dotnet-isolated')
@allowed([
  'FlexConsumption'
  'ElasticPremium'
])
param hostingPlan string = 'FlexConsumption'

@description('The .NET version of the isolated worker (Flex: runtime version; EP1: DOTNET-ISOLATED|<version>).')
param dotnetVersion string = '10.0'

@description('Default OBS bucket restores from a copy upload into (POST /api/graphs/{id}/restores); empty: each request names its obsPath.')
param restoreObsBucket string = ''

@description('OBS endpoint for restores; empty: the Huawei Cloud region\'s (https://obs.{region}.myhuaweicloud.com).')
param restoreObsEndpoint string = ''

@description('true: OBS writes use their own AK/SK (Key Vault secrets obs-access-key, obs-secret-key); false: the Huawei Cloud AK/SK.')
param restoreObsOwnCredentials bool = false

var suffix = uniqueString(resourceGroup().id, name)
var isFlex = hostingPlan == 'FlexConsumption'
var appStorageName = take('${name}app${suffix}', 24)
var destinationStorageName = take('${name}dst${suffix}', 24)
var deploymentContainer = 'app-package'
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${name}-id'
  location: location
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${name}-ai'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

// The app's own storage: queues, run records (backuprelay-runs), the deployment package.
resource appStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: appStorageName
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource appBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: appStorage
  name: 'default'
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: appBlobs
  name: deploymentContainer
}

// Where the backups land: soft delete for blobs and containers, optional immutability.
// Zone-redundant unless copies are archived: ZRS has no Archive tier, so archiving takes geo-redundant
// storage (GRS: three copies in the region and three in its pair; it costs about twice LRS and somewhat
// more than ZRS, and survives the loss of the region, which ZRS does not).
resource destinationStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: destinationStorageName
  location: location
  sku: { name: archiveAfterDays > 0 ? 'Standard_GRS' : 'Standard_ZRS' }
  kind: 'StorageV2'
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource destinationBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: destinationStorage
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: softDeleteDays }
    containerDeleteRetentionPolicy: { enabled: true, days: softDeleteDays }
    isVersioningEnabled: true
  }
}

resource destination 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: destinationBlobs
  name: destinationContainer
  properties: {
    publicAccess: 'None'
  }
}

resource retention 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (immutabilityDays > 0) {
  parent: destination
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: immutabilityDays
    allowProtectedAppendWrites: false
  }
}

// Lifecycle: cool, archive and delete by age. Time-based immutability (immutabilityDays) still wins:
// a blob under retention is not deleted before the retention ends (tier changes are allowed); a
// deleted blob stays softDeleteDays as soft-deleted (and as a previous version, versioning being on).
var lifecycleOn = coolAfterDays > 0 || archiveAfterDays > 0 || deleteAfterDays > 0
var baseBlobActions = union(
  coolAfterDays > 0 ? { tierToCool: { daysAfterModificationGreaterThan: coolAfterDays } } : {},
  archiveAfterDays > 0 ? { tierToArchive: { daysAfterModificationGreaterThan: archiveAfterDays } } : {},
  deleteAfterDays > 0 ? { delete: { daysAfterModificationGreaterThan: deleteAfterDays } } : {}
)

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = if (lifecycleOn) {
  parent: destinationStorage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'backup-age'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [ 'blockBlob' ]
              prefixMatch: [ '${destinationContainer}/' ]
            }
            actions: union(
              { baseBlob: baseBlobActions },
              deleteAfterDays > 0 ? { version: { delete: { daysAfterCreationGreaterThan: deleteAfterDays } } } : {}
            )
          }
        }
      ]
    }
  }
  dependsOn: [ destination ]
}

// The app may read and write backups but not delete them: a custom role without the delete action.
resource writeOnlyRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, name, 'backuprelay-blob-writer')
  properties: {
    // Role names are unique per tenant: the resource group and app name keep a second deployment apart.
    roleName: 'BackupRelay blob writer, no delete (${resourceGroup().name}/${name})'
    description: 'Read, create and write blobs and their metadata; no delete.'
    type: 'CustomRole'
    assignableScopes: [ resourceGroup().id ]
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/read'
        ]
        dataActions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'
        ]
      }
    ]
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('${name}-kv-${suffix}', 24)
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
  }
}

// Secret values are set after deployment (az keyvault secret set): they never pass through a template.
var secretNames = {
  password: 'huawei-password'
  accessKey: 'huawei-access-key'
  secretKey: 'huawei-secret-key'
  webhookSecret: 'webhook-secret'
  obsAccessKey: 'obs-access-key'
  obsSecretKey: 'obs-secret-key'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${name}-plan'
  location: location
  kind: isFlex ? 'functionapp' : 'elastic'
  sku: isFlex ? { tier: 'FlexConsumption', name: 'FC1' } : { tier: 'ElasticPremium', name: 'EP1' }
  properties: {
    reserved: true
    maximumElasticWorkerCount: isFlex ? null : maximumInstanceCount
  }
}

var kv = '@Microsoft.KeyVault(VaultName=${vault.name};SecretName='
var baseSettings = [
  { name: 'AzureWebJobsStorage__accountName', value: appStorage.name }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identity.properties.clientId};Authorization=AAD' }
  { name: 'HuaweiCloud__Region', value: huaweiRegion }
  { name: 'HuaweiCloud__ProjectId', value: huaweiProjectId }
  { name: 'HuaweiCloud__Auth__UserName', value: huaweiUserName }
  { name: 'HuaweiCloud__Auth__DomainName', value: huaweiDomainName }
  { name: 'HuaweiCloud__Auth__Password', value: empty(huaweiUserName) ? '' : '${kv}${secretNames.password})' }
  { name: 'HuaweiCloud__Auth__AccessKey', value: empty(huaweiUserName) ? '${kv}${secretNames.accessKey})' : '' }
  { name: 'HuaweiCloud__Auth__SecretKey', value: empty(huaweiUserName) ? '${kv}${secretNames.secretKey})' : '' }
  { name: 'Obs__Bucket', value: restoreObsBucket }
  { name: 'Obs__Endpoint', value: restoreObsEndpoint }
  { name: 'Obs__AccessKeyId', value: restoreObsOwnCredentials ? '${kv}${secretNames.obsAccessKey})' : '' }
  { name: 'Obs__SecretAccessKey', value: restoreObsOwnCredentials ? '${kv}${secretNames.obsSecretKey})' : '' }
  { name: 'Backup__Schedule', value: backupSchedule }
  { name: 'Destination__blobServiceUri', value: destinationStorage.properties.primaryEndpoints.blob }
  { name: 'Destination__credential', value: 'managedidentity' }
  { name: 'Destination__clientId', value: identity.properties.clientId }
  { name: 'Destination__Container', value: destinationContainer }
  { name: 'Destination__WriteOnce', value: string(immutabilityDays > 0) }
  { name: 'Http__WebhookSecret', value: '${kv}${secretNames.webhookSecret})' }
]
var graphSettings = [for (graphId, i) in graphIds: { name: 'Backup__Graphs__${i}__GraphId', value: graphId }]
var drillSettingsPerGraph = [for (graphId, i) in graphIds: contains(drills, graphId) ? [
  { name: 'Backup__Graphs__${i}__Drill__Schedule', value: drills[graphId].schedule }
  { name: 'Backup__Graphs__${i}__Drill__TargetGraphId', value: drills[graphId].targetGraphId }
  { name: 'Backup__Graphs__${i}__Drill__RestoreTarget', value: drills[graphId].?restoreTarget ?? '' }
] : []]
var drillSettings = flatten(drillSettingsPerGraph)

// Elastic Premium has no functionAppConfig: the runtime and the package come from app settings. The app
// runs without Azure Files (the app storage allows no shared keys); the package is read from the
// deployment container with the identity.
var premiumSettings = [
  { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
  { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'dotnet-isolated' }
  { name: 'WEBSITE_RUN_FROM_PACKAGE', value: '${appStorage.properties.primaryEndpoints.blob}${deploymentContainer}/backuprelay.zip' }
  { name: 'WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID', value: identity.id }
]

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: '${name}-${suffix}'
  location: location
  kind: 'functionapp,linux'
  // Its start-up checks storage, the destination and Key Vault with the identity: the roles come first.
  dependsOn: [ appBlobOwner, appQueues, destinationWriter, secretsUser, metricsPublisher ]
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    functionAppConfig: isFlex
      ? {
          deployment: {
            storage: {
              type: 'blobContainer'
              value: '${appStorage.properties.primaryEndpoints.blob}${deploymentContainer}'
              authentication: {
                type: 'UserAssignedIdentity'
                userAssignedIdentityResourceId: identity.id
              }
            }
          }
          scaleAndConcurrency: {
            maximumInstanceCount: maximumInstanceCount
            instanceMemoryMB: 2048
          }
          runtime: { name: 'dotnet-isolated', version: dotnetVersion }
        }
      : null
    siteConfig: {
      minTlsVersion: '1.2'
      linuxFxVersion: isFlex ? null : 'DOTNET-ISOLATED|${dotnetVersion}'
      functionAppScaleLimit: isFlex ? null : maximumInstanceCount
      appSettings: concat(baseSettings, graphSettings, drillSettings, isFlex ? [] : premiumSettings)
    }
  }
}

// No FTP or SCM publishing with basic credentials: deployment goes through the identity only.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: app
  name: 'ftp'
  properties: { allow: false }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: app
  name: 'scm'
  properties: { allow: false }
}

// Role assignments: only what the app needs, only where it needs it.
resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appStorage.id, identity.id, roles.storageBlobDataOwner)
  scope: appStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appStorage.id, identity.id, roles.storageQueueDataContributor)
  scope: appStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource destinationWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(destination.id, identity.id, writeOnlyRole.id)
  scope: destination
  properties: {
    roleDefinitionId: writeOnlyRole.id
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Alerts on the app's telemetry (README, "Telemetry"), routed to one action group.
resource alerts 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${name}-alerts'
  location: 'global'
  properties: {
    groupShortName: take('${name}alert', 12)
    enabled: true
    emailReceivers: [for (address, i) in alertEmails: {
      name: 'email-${i}'
      emailAddress: address
      useCommonAlertSchema: true
    }]
    webhookReceivers: empty(alertWebhookUrl) ? [] : [
      {
        name: 'webhook'
        serviceUri: alertWebhookUrl
        useCommonAlertSchema: true
      }
    ]
  }
}

var alertRules = [
  {
    key: 'stale'
    title: 'BackupRelay: a graph is stale'
    description: 'A configured graph has had no verified copy for longer than its freshness threshold (backuprelay.graph.stale = 1).'
    severity: 1
    frequency: 'PT15M'
    window: 'PT30M'
    query: 'AppMetrics | where Name == "backuprelay.graph.stale" | extend graph = tostring(Properties["backuprelay.graph.id"]) | summarize stale = max(Max) by graph | where stale >= 1'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    key: 'unverified'
    title: 'BackupRelay: a graph\'s newest copy is not verified'
    description: 'A configured graph\'s newest copy could not be checked against its source (received-only) and no verified copy is newer (backuprelay.graph.unverified = 1).'
    severity: 1
    frequency: 'PT15M'
    window: 'PT30M'
    query: 'AppMetrics | where Name == "backuprelay.graph.unverified" | extend graph = tostring(Properties["backuprelay.graph.id"]) | summarize unverified = max(Max) by graph | where unverified >= 1'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    key: 'restore-unproven'
    title: 'BackupRelay: a graph\'s restore is unproven'
    description: 'A drilled graph\'s last restore drill failed, or none passed within its threshold (backuprelay.graph.restore_unproven = 1).'
    severity: 1
    frequency: 'PT15M'
    window: 'PT30M'
    query: 'AppMetrics | where Name == "backuprelay.graph.restore_unproven" | extend graph = tostring(Properties["backuprelay.graph.id"]) | summarize unproven = max(Max) by graph | where unproven >= 1'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    key: 'restore-too-slow'
    title: 'BackupRelay: a graph\'s restore is slower than its target'
    description: 'A drilled graph\'s last passed drill, or the estimated restore of its newest copy, exceeds its restore target (backuprelay.graph.restore_too_slow = 1).'
    severity: 2
    frequency: 'PT15M'
    window: 'PT30M'
    query: 'AppMetrics | where Name == "backuprelay.graph.restore_too_slow" | extend graph = tostring(Properties["backuprelay.graph.id"]) | summarize tooSlow = max(Max) by graph | where tooSlow >= 1'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    key: 'no-backup'
    title: 'BackupRelay: no verified backup'
    description: 'No backup run ended Succeeded in the window: the schedule, the app or every run has stopped (fires even when the app sends nothing at all).'
    severity: 1
    frequency: 'PT1H'
    window: 'PT${noBackupAlertHours}H'
    query: 'AppMetrics | where Name == "backuprelay.runs.finished" | where tostring(Properties["backuprelay.run.kind"]) == "backup" and tostring(Properties["backuprelay.run.outcome"]) == "Succeeded" | summarize succeeded = sum(Sum) | where succeeded > 0'
    operator: 'LessThan'
    threshold: 1
  }
  {
    key: 'failed'
    title: 'BackupRelay: a run failed'
    description: 'A run ended Failed or PartiallyFailed (backuprelay.runs.finished by outcome).'
    severity: 2
    frequency: 'PT5M'
    window: 'PT5M'
    query: 'AppMetrics | where Name == "backuprelay.runs.finished" | extend outcome = tostring(Properties["backuprelay.run.outcome"]), graph = tostring(Properties["backuprelay.graph.id"]) | where outcome in ("Failed", "PartiallyFailed") | summarize runs = sum(Sum) by graph, outcome'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    key: 'parked'
    title: 'BackupRelay: a message was parked'
    description: 'A queue message went to a poison queue (backuprelay.messages.parked).'
    severity: 2
    frequency: 'PT5M'
    window: 'PT5M'
    query: 'AppMetrics | where Name == "backuprelay.messages.parked" | extend queue = tostring(Properties["messaging.destination.name"]) | summarize parked = sum(Sum) by queue'
    operator: 'GreaterThan'
    threshold: 0
  }
]

resource alertRule 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for rule in alertRules: {
  name: '${name}-${rule.key}'
  location: location
  properties: {
    displayName: rule.title
    description: rule.description
    severity: rule.severity
    enabled: true
    evaluationFrequency: rule.frequency
    windowSize: rule.window
    scopes: [ logs.id ]
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: rule.operator
          threshold: rule.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [ alerts.id ]
    }
  }
}]

// One page for operators: per-graph freshness, recent runs with outcome, throughput and failures.
resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, name, 'backuprelay-workbook')
  location: location
  kind: 'shared'
  properties: {
    displayName: 'BackupRelay (${name})'
    category: 'workbook'
    sourceId: logs.id
    serializedData: string({
      version: 'Notebook/1.0'
      items: [
        {
          type: 1
          content: { json: '## BackupRelay\nFreshness per graph, recent runs, throughput and failures, from the app\'s OpenTelemetry metrics.' }
        }
        {
          type: 3
          content: {
            version: 'KqlItem/1.0'
            title: 'Freshness per graph'
            query: 'AppMetrics | where Name in ("backuprelay.graph.last_verified_copy.time", "backuprelay.graph.stale") | extend graph = tostring(Properties["backuprelay.graph.id"]) | summarize arg_max(TimeGenerated, Max) by graph, Name | evaluate pivot(Name, any(Max)) | project graph, lastVerifiedCopy = unixtime_seconds_todatetime(todouble(column_ifexists("backuprelay.graph.last_verified_copy.time", real(null)))), stale = column_ifexists("backuprelay.graph.stale", real(null))'
            queryType: 0
            resourceType: 'microsoft.operationalinsights/workspaces'
            visualization: 'table'
          }
        }
        {
          type: 3
          content: {
            version: 'KqlItem/1.0'
            title: 'Restore drills per graph'
            query: 'AppMetrics | where Name in ("backuprelay.graph.last_proven_restore.age", "backuprelay.graph.restore_unproven", "backuprelay.graph.restore_estimate", "backuprelay.graph.restore_too_slow") | extend graph = tostring(Properties["backuprelay.graph.id"]) | summarize arg_max(TimeGenerated, Max) by graph, Name | evaluate pivot(Name, any(Max)) | project graph, hoursSinceProvenRestore = round(todouble(column_ifexists("backuprelay.graph.last_proven_restore.age", real(null))) / 3600, 1), restoreUnproven = column_ifexists("backuprelay.graph.restore_unproven", real(null)), estimatedRestoreMinutes = round(todouble(column_ifexists("backuprelay.graph.restore_estimate", real(null))) / 60, 1), restoreTooSlow = column_ifexists("backuprelay.graph.restore_too_slow", real(null))'
            queryType: 0
            resourceType: 'microsoft.operationalinsights/workspaces'
            visualization: 'table'
          }
        }
        {
          type: 3
          content: {
            version: 'KqlItem/1.0'
            title: 'Runs ended, by outcome'
            query: 'AppMetrics | where Name == "backuprelay.runs.finished" | extend outcome = tostring(Properties["backuprelay.run.outcome"]), graph = tostring(Properties["backuprelay.graph.id"]) | summarize runs = sum(Sum) by bin(TimeGenerated, 1h), outcome'
            queryType: 0
            resourceType: 'microsoft.operationalinsights/workspaces'
            visualization: 'barchart'
          }
        }
        {
          type: 3
          content: {
            version: 'KqlItem/1.0'
            title: 'Bytes copied per hour'
            query: 'AppMetrics | where Name == "backuprelay.copy.bytes" | summarize bytes = sum(Sum) by bin(TimeGenerated, 1h), graph = tostring(Properties["backuprelay.graph.id"])'
            queryType: 0
            resourceType: 'microsoft.operationalinsights/workspaces'
            visualization: 'timechart'
          }
        }
        {
          type: 3
          content: {
            version: 'KqlItem/1.0'
            title: 'Failures: failed runs, parked messages, throttled Huawei Cloud calls'
            query: 'AppMetrics | where Name in ("backuprelay.runs.finished", "backuprelay.messages.parked", "backuprelay.huaweicloud.calls") | extend outcome = tostring(coalesce(Properties["backuprelay.run.outcome"], Properties["backuprelay.outcome"])) | where Name == "backuprelay.messages.parked" or outcome in ("Failed", "PartiallyFailed", "throttled", "server_error", "failed") | summarize count = sum(Sum) by bin(TimeGenerated, 1h), Name, outcome'
            queryType: 0
            resourceType: 'microsoft.operationalinsights/workspaces'
            visualization: 'table'
          }
        }
      ]
    })
  }
}

output functionAppName string = app.name
output functionAppUrl string = 'https://${app.properties.defaultHostName}'
output keyVaultName string = vault.name
output destinationAccount string = destinationStorage.name
output hostingPlan string = hostingPlan
