"""The rows, one module per concern; `from streams.models import …` is the way in. The modules
import one another one way only (teams, then profiles, then audit, then jobs, then streams and
plans):

teams     who may see and change which connections: teams, members and their roles
profiles  saved connections to brokers, which every other row belongs to
audit     the append-only, hash-chained audit log, its sealed head and its checkpoints
health    what the periodic connection checks found, and streams' numbers over time
jobs      broker operations (the Job owns its life), their approvals on profiles that
          require one, and the workers' heartbeats
streams   what the broker last said about streams and consumers; the team's definitions
outside   what the advisory listener has recorded of changes made outside
plans     bulk changes to a profile's streams, proposed and then applied"""

from streams.definitions import StreamSync
from streams.models.audit import (
    Acting,
    AppendOnlyError,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    AuditQuerySet,
)
from streams.models.health import ConnectionHealth, ConsumerSample, StreamSample
from streams.models.jobs import (
    Approval,
    ApprovalStatus,
    Job,
    JobKind,
    JobQuerySet,
    JobStatus,
    ProfileBusy,
    Recording,
    WorkerHeartbeat,
    WorkerHeartbeatQuerySet,
)
from streams.models.outside import CaptureMark, Following, SeenAdvisory
from streams.models.plans import Plan, PlanQuerySet
from streams.models.profiles import AuthMethod, BrokerKind, Profile, ProfileQuerySet
from streams.models.streams import (
    Config,
    Consumer,
    ConsumerQuerySet,
    Stream,
    StreamDefinition,
    StreamDefinitionQuerySet,
    StreamQuerySet,
    StreamStatus,
)
from streams.models.teams import (
    Membership,
    RefusalBurst,
    Role,
    Team,
    TeamQuerySet,
    WebhookDelivery,
)

# Migrations 0006, 0009 and 0015 name the field streams.models.UInt64Field, from when it was
# defined here.
from streams.uint64 import UInt64Field

__all__ = [
    "Acting",
    "AppendOnlyError",
    "Approval",
    "ApprovalStatus",
    "AuditChainHead",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditQuerySet",
    "AuthMethod",
    "BrokerKind",
    "CaptureMark",
    "Config",
    "ConnectionHealth",
    "Consumer",
    "ConsumerQuerySet",
    "ConsumerSample",
    "Following",
    "Job",
    "JobKind",
    "JobQuerySet",
    "JobStatus",
    "Membership",
    "Plan",
    "PlanQuerySet",
    "Profile",
    "ProfileBusy",
    "ProfileQuerySet",
    "Recording",
    "RefusalBurst",
    "Role",
    "SeenAdvisory",
    "Stream",
    "StreamDefinition",
    "StreamDefinitionQuerySet",
    "StreamQuerySet",
    "StreamSample",
    "StreamStatus",
    "StreamSync",
    "Team",
    "TeamQuerySet",
    "UInt64Field",
    "WebhookDelivery",
    "WorkerHeartbeat",
    "WorkerHeartbeatQuerySet",
]
