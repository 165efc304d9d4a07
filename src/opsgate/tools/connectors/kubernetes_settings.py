"""Settings of the `kubernetes` connector (kept apart so loading settings needs no client)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_VAULT_REF = r"^secret://[a-z0-9][a-z0-9._-]{0,63}$"


class KubernetesCredential(BaseModel):
    """The service account one scope acts as."""

    model_config = ConfigDict(extra="forbid")

    # A kubeconfig file holding this scope's service account (default: the connector's).
    kubeconfig: Path | None = None
    # The kubeconfig context to use (default: the connector's context, else the file's current).
    context: str | None = None
    # The service account's bearer token as a vault reference (`secret://name`), resolved in the
    # caller's tenant at each call. The API server and CA still come from the kubeconfig or the
    # in-cluster config; that config's own user credentials are then not used.
    token: str | None = Field(None, pattern=_VAULT_REF)

    @model_validator(mode="after")
    def _own_credential(self) -> KubernetesCredential:
        if self.kubeconfig is None and self.context is None and self.token is None:
            raise ValueError(
                "name this scope's own service account: token (secret://...), kubeconfig or context"
            )
        return self


class KubernetesScope(KubernetesCredential):
    # The namespace this service account may act in; calls for any other namespace are refused.
    namespace: str = Field(pattern=DNS_LABEL.pattern, max_length=63)


class KubernetesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Off by default: the connector exposes no tools and reports "disabled".
    enabled: bool = False
    # The cluster's kubeconfig (default: the client's own default, $KUBECONFIG or ~/.kube/config).
    kubeconfig: Path | None = None
    # The kubeconfig context (default: the file's current-context).
    context: str | None = None
    # Use the pod's in-cluster config (API server and CA) instead of a kubeconfig file.
    in_cluster: bool = False
    # One service account per namespace: the only namespaces any tool may touch.
    scopes: list[KubernetesScope] = Field(default_factory=list)
    # The service account for the cluster-scoped node tools (cordon/uncordon); unset = refused.
    node_scope: KubernetesCredential | None = None

    @model_validator(mode="after")
    def _consistent(self) -> KubernetesSettings:
        if self.in_cluster and self.kubeconfig is not None:
            raise ValueError("set either in_cluster or kubeconfig, not both")
        seen: set[str] = set()
        for s in self.scopes:
            if s.namespace in seen:
                raise ValueError(f"namespace {s.namespace!r} has more than one scope")
            seen.add(s.namespace)
        return self
