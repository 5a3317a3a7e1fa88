"""The fake Cloud Run Admin API v2 and ``google.longrunning.Operations``, as gRPC generic handlers.

Served over the real proto messages, so the real ``google-cloud-run`` clients
talk to it unchanged:

- ``google.cloud.run.v2.Services``: GetService, ListServices, UpdateService
  (the fields ``update_mask`` names, every field when it is empty: ``traffic``,
  ``template`` and ``annotations``, a map replaced as a whole; answers a ``google.longrunning.Operation`` whose
  ``metadata`` and, once done, ``response`` pack the ``Service``; a failed
  reconcile ends the operation with an error and the service's
  ``terminal_condition`` FAILED);
- ``google.cloud.run.v2.Services``: GetIamPolicy and SetIamPolicy (the real ``google.iam.v1``
  messages; the policy is persisted with the service, ``gcloud run deploy
  --allow-unauthenticated`` binds ``allUsers`` to ``roles/run.invoker``; a SetIamPolicy whose
  etag is stale is ABORTED, as IAM's ``Policy.etag`` documents);
- ``google.cloud.run.v2.Revisions``: GetRevision, ListRevisions (paged by
  ``page_size``, in an order that is not the creation order: callers sort);
- ``google.longrunning.Operations``: GetOperation.

Status codes as Cloud Run: NOT_FOUND (unknown project, location, service,
revision, operation), ABORTED or FAILED_PRECONDITION (stale etag, as the
daemon's ``--etag-mode`` says; ``NONE`` checks no etag), ALREADY_EXISTS (a
template that names an existing revision with another configuration),
INVALID_ARGUMENT (bad traffic, tag, update_mask path).
Every call is counted and may fail with an injected fault (:mod:`sandbox.calls`), before it
is carried out, or after (``METHOD:applied``, see :data:`APPLIED_SUFFIX`); ``UpdateService:annotations``
refuses only the updates whose mask names ``annotations`` (:data:`ANNOTATIONS_SUFFIX`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import grpc
from google.cloud import run_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from sandbox.calls import CallLog
from sandbox.convert import from_traffic_targets, template_config, to_revision, to_service
from sandbox.core import (
    AlreadyExists,
    EtagMismatch,
    FailedPrecondition,
    NotFound,
    Operation,
    SandboxCore,
    Unimplemented,
    new_etag,
)
from sandbox.traffic import TrafficError, traffic_to_revisions

__all__ = ["admin_handlers"]


class _Names:
    """Parses resource names and checks project and location against the sandbox's."""

    def __init__(self, core: SandboxCore) -> None:
        self.core = core

    def _check(self, parts: list[str], name: str) -> None:
        if len(parts) < 4 or parts[0] != "projects" or parts[2] != "locations":
            raise ValueError(f"malformed resource name {name!r}: expected projects/PROJECT/locations/LOCATION/...")
        if parts[1] != self.core.state.project:
            raise NotFound(f"project {parts[1]!r} not found (the sandbox serves {self.core.state.project!r})")
        if parts[3] != self.core.state.region:
            raise NotFound(f"location {parts[3]!r} not found (the sandbox serves {self.core.state.region!r})")

    def location(self, name: str) -> None:
        parts = name.split("/")
        self._check(parts, name)
        if len(parts) != 4:
            raise ValueError(f"malformed parent {name!r}: expected projects/PROJECT/locations/LOCATION")

    def service(self, name: str) -> str:
        parts = name.split("/")
        self._check(parts, name)
        if len(parts) != 6 or parts[4] != "services" or not parts[5]:
            raise ValueError(f"malformed service name {name!r}: expected projects/P/locations/L/services/S")
        return parts[5]

    def revision(self, name: str) -> tuple[str, str]:
        parts = name.split("/")
        self._check(parts, name)
        if len(parts) != 8 or parts[4] != "services" or parts[6] != "revisions":
            raise ValueError(f"malformed revision name {name!r}: expected projects/P/locations/L/services/S/revisions/R")
        return parts[5], parts[7]


def _pack(service: run_v2.Service) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(run_v2.Service.pb(service))
    return packed


def _operation(core: SandboxCore, op: Operation) -> operations_pb2.Operation:
    with core.lock:
        service = to_service(core.state, op.snapshot)
    message = operations_pb2.Operation(name=op.name, done=op.done, metadata=_pack(service))
    if op.done and op.error:
        message.error.CopyFrom(status_pb2.Status(code=grpc.StatusCode.UNKNOWN.value[0], message=op.error))
    elif op.done:
        message.response.CopyFrom(_pack(service))
    return message


APPLIED_SUFFIX = ":applied"
"""``inject("UpdateService:applied", CODE)``: the request is carried out, then answered with CODE, as when
an answer is lost after the change was made (gRPC: DEADLINE_EXCEEDED "may be returned even if the
operation has completed successfully"; UNKNOWN, INTERNAL likewise say nothing of what was done)."""

ANNOTATIONS_SUFFIX = ":annotations"
"""``inject("UpdateService:annotations", CODE)``: an UpdateService whose ``update_mask`` names
``annotations`` is refused with CODE before anything is changed (the traffic part with it), as when a
policy or a permission refuses the annotation part; a traffic-only update is not affected."""


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


_SERVICE_FIELDS = frozenset(run_v2.Service.pb().DESCRIPTOR.fields_by_name)
DEFAULT_PAGE_SIZE = 100


def _mask_fields(paths: list[str]) -> set[str] | None:
    """The top-level Service fields an ``update_mask`` names (camelCase accepted); None: every field."""
    if not paths:
        return None
    fields = set()
    for path in paths:
        top = re.sub(r"(?<!^)([A-Z])", r"_\1", path.split(".", 1)[0]).lower()
        if top not in _SERVICE_FIELDS:
            raise ValueError(f"update_mask path {path!r} is not a field of Service")
        fields.add(top)
    return fields


def _list_order(name: str) -> str:
    """ListRevisions order: by a hash of the name, neither creation order nor its reverse."""
    return hashlib.sha256(name.encode()).hexdigest()


def admin_handlers(core: SandboxCore, calls: CallLog) -> list[grpc.GenericRpcHandler]:
    """The generic handlers for Services, Revisions and Operations."""
    names = _Names(core)

    def rpc(
        method: str,
        fn: Callable[[Any], Any],
        request_type: Any,
        serialize: Callable[[Any], bytes],
        *,
        validate_only: Callable[[Any], bool] = lambda request: False,
    ) -> grpc.RpcMethodHandler:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            fault = calls.record(method, validate_only=validate_only(request))
            if fault is not None:
                context.abort(fault, calls.message_of(method, fault))
            try:
                answer = fn(request)
                late = calls.record(method + APPLIED_SUFFIX)
                if late is not None:  # the change is made, and then the answer is an error (a lost response)
                    context.abort(late, calls.message_of(method + APPLIED_SUFFIX, late))
                return answer
            except NotFound as exc:
                error: tuple[grpc.StatusCode, str] = (grpc.StatusCode.NOT_FOUND, str(exc))
            except EtagMismatch as exc:
                error = (grpc.StatusCode[exc.code], str(exc))
            except AlreadyExists as exc:
                error = (grpc.StatusCode.ALREADY_EXISTS, str(exc))
            except FailedPrecondition as exc:
                error = (grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            except _Refused as exc:
                error = (exc.code, exc.message)
            except Unimplemented as exc:
                error = (grpc.StatusCode.UNIMPLEMENTED, str(exc))
            except (TrafficError, ValueError) as exc:
                error = (grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            context.abort(*error)

        deserialize = request_type.deserialize if hasattr(request_type, "deserialize") else request_type.FromString
        return grpc.unary_unary_rpc_method_handler(handle, request_deserializer=deserialize, response_serializer=serialize)

    def get_service(request: run_v2.GetServiceRequest) -> run_v2.Service:
        name = names.service(request.name)
        with core.lock:
            answer = to_service(core.state, core.service(name))
            race = core.race_after_get.pop(name, None)
            if race is not None:  # another writer changes the traffic right after this read: its etag is stale
                current = core.service(name)
                core.update_traffic(name, traffic_to_revisions(current.traffic, race), etag=current.etag)
        return answer

    def list_services(request: run_v2.ListServicesRequest) -> run_v2.ListServicesResponse:
        names.location(request.parent)
        with core.lock:
            services = [to_service(core.state, s) for _, s in sorted(core.state.services.items())]
        return run_v2.ListServicesResponse(services=services)

    def update_service(request: run_v2.UpdateServiceRequest) -> operations_pb2.Operation:
        service = names.service(request.service.name)
        fields = _mask_fields(list(request.update_mask.paths))
        traffic = from_traffic_targets(list(request.service.traffic)) if fields is None or "traffic" in fields else None
        template = None
        sent = request.service.template
        # without a mask, an empty template counts as not sent (the sandbox's leniency, see the fidelity doc)
        if (fields is None and (sent.containers or sent.revision)) or (fields is not None and "template" in fields):
            template = (sent.revision.rsplit("/", 1)[-1], template_config(sent))
        annotations = dict(request.service.annotations) if fields is not None and "annotations" in fields else None
        if annotations is not None:
            refused = calls.record("UpdateService" + ANNOTATIONS_SUFFIX, validate_only=request.validate_only)
            if refused is not None:
                raise _Refused(refused, calls.message_of("UpdateService" + ANNOTATIONS_SUFFIX, refused))
        _, op = core.update_service(
            service,
            traffic=traffic,
            template=template,
            annotations=annotations,
            etag=request.service.etag,
            validate_only=request.validate_only,
        )
        return _operation(core, op)

    def _policy(name: str) -> policy_pb2.Policy:
        svc = core.service(name)
        return policy_pb2.Policy(
            version=1,
            bindings=[policy_pb2.Binding(role=role, members=members) for role, members in sorted(svc.iam_bindings.items())],
            etag=svc.iam_etag.encode(),
        )

    def get_iam_policy(request: iam_policy_pb2.GetIamPolicyRequest) -> policy_pb2.Policy:
        return _policy(names.service(request.resource))

    def set_iam_policy(request: iam_policy_pb2.SetIamPolicyRequest) -> policy_pb2.Policy:
        name = names.service(request.resource)
        with core.lock:
            svc = core.state.services.get(name)
            if svc is None:
                raise NotFound(f"service {name!r} not found")
            if request.policy.etag and request.policy.etag.decode() != svc.iam_etag:
                raise EtagMismatch("the policy's etag is stale: read the policy again (GetIamPolicy) and retry")
            bindings: dict[str, list[str]] = {}
            for binding in request.policy.bindings:
                bindings.setdefault(binding.role, []).extend(m for m in binding.members if m not in bindings.get(binding.role, []))
            svc.iam_bindings = bindings
            svc.iam_etag = new_etag()
            core.save()
        return _policy(name)

    def get_revision(request: run_v2.GetRevisionRequest) -> run_v2.Revision:
        service, revision = names.revision(request.name)
        core.service(service)
        rev = core.revision(revision, service=service)
        with core.lock:
            return to_revision(core.state, rev)

    def list_revisions(request: run_v2.ListRevisionsRequest) -> run_v2.ListRevisionsResponse:
        service = names.service(request.parent)
        core.service(service)
        size = request.page_size if request.page_size > 0 else DEFAULT_PAGE_SIZE
        try:
            start = int(request.page_token or 0)
        except ValueError:
            raise ValueError(f"page_token {request.page_token!r} was not returned by ListRevisions") from None
        with core.lock:
            ordered = sorted(core.state.revisions_of(service), key=lambda r: _list_order(r.name))
            revisions = [to_revision(core.state, r) for r in ordered[start : start + size]]
        token = str(start + size) if start + size < len(ordered) else ""
        return run_v2.ListRevisionsResponse(revisions=revisions, next_page_token=token)

    def get_operation(request: operations_pb2.GetOperationRequest) -> operations_pb2.Operation:
        return _operation(core, core.operation(request.name))

    services = grpc.method_handlers_generic_handler(
        "google.cloud.run.v2.Services",
        {
            "GetService": rpc("GetService", get_service, run_v2.GetServiceRequest, run_v2.Service.serialize),
            "ListServices": rpc(
                "ListServices", list_services, run_v2.ListServicesRequest, run_v2.ListServicesResponse.serialize
            ),
            "UpdateService": rpc(
                "UpdateService",
                update_service,
                run_v2.UpdateServiceRequest,
                operations_pb2.Operation.SerializeToString,
                validate_only=lambda r: bool(r.validate_only),
            ),
            "GetIamPolicy": rpc(
                "GetIamPolicy", get_iam_policy, iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy.SerializeToString
            ),
            "SetIamPolicy": rpc(
                "SetIamPolicy", set_iam_policy, iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy.SerializeToString
            ),
        },
    )
    revisions = grpc.method_handlers_generic_handler(
        "google.cloud.run.v2.Revisions",
        {
            "GetRevision": rpc("GetRevision", get_revision, run_v2.GetRevisionRequest, run_v2.Revision.serialize),
            "ListRevisions": rpc(
                "ListRevisions", list_revisions, run_v2.ListRevisionsRequest, run_v2.ListRevisionsResponse.serialize
            ),
        },
    )
    operations = grpc.method_handlers_generic_handler(
        "google.longrunning.Operations",
        {
            "GetOperation": rpc(
                "GetOperation", get_operation, operations_pb2.GetOperationRequest, operations_pb2.Operation.SerializeToString
            ),
        },
    )
    return [services, revisions, operations]
