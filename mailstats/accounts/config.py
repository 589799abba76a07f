"""The accounts file (TOML): one format for `--batch` and the desktop app.

The format is a contract (DESIGN.md "Accounts file"): other people's scripts write it. Errors
name the file, the account and the key, in one line, because the person reading them is
editing that file right now. Passwords are resolved as late as possible and never kept in a
repr, a log line or an error message.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECURITY = ("ssl", "starttls", "none")
ROLES = ("ham", "spam", "sent")
LABELS = ("hand", "provider")
KEYRING_SERVICE = "mailstats"

#: The core's own [settings] keys. Modules declare theirs (`Module.settings`); any other key
#: is a mistake in the file (a misspelled key would otherwise be ignored without a word).
_SETTINGS_KEYS = {
    "dns_servers": list,
    "dnsbl_zones": list,
    "modules": list,
    "cache": str,
    "dns_timeout": (int, float),
    "dns_deadline": (int, float),
    "batch_size": int,
    "jobs": int,
    "scheduler": str,
    "analysis_workers": int,
    "worker_min": int,
    "now_max_age_days": (int, float),
    "dns_budgets": dict,
    "dns_cache": str,
    "imap_timeout": (int, float),
    "imap_command_timeout": (int, float),
}
#: Settings that are a number of seconds, which must be more than zero.
_POSITIVE_SETTINGS = ("imap_timeout", "imap_command_timeout")
_ACCOUNT_KEYS = {
    "name": str,
    "host": str,
    "port": int,
    "security": str,
    "username": str,
    "password": str,
    "password_env": str,
    "full_name": str,
    "address": str,
    "own_domains": list,
    "trusted_relays": list,
    "ham": list,
    "spam": list,
    "sent": list,
    "path": str,
    "labels": str,
    "tls_verify": bool,
    "ca_file": str,
    # OAuth2 and provider profiles (accounts/oauth.py, accounts/providers.py)
    "auth": str,
    "provider": str,
    "client_id": str,
    "client_secret": str,
    "tenant": str,
    "scopes": list,
    "sasl": str,
    "auth_url": str,
    "token_url": str,
    "device_url": str,
}


class ConfigError(ValueError):
    """A problem in the accounts file, worded for the person editing it."""


@dataclass
class Account:
    name: str
    host: str = ""
    port: int = 0
    security: str = "ssl"
    username: str = ""
    password: str = field(default="", repr=False)
    password_env: str = ""
    full_name: str = ""
    address: str = ""
    own_domains: list[str] = field(default_factory=list)
    trusted_relays: list[str] = field(default_factory=list)
    ham: list[str] = field(default_factory=list)
    spam: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    path: str = ""
    labels: str = "hand"
    tls_verify: bool = True
    ca_file: str = ""  # extra CA bundle for a private server's certificate
    # "password" | "oauth2"; provider profile; OAuth2 client (docs/oauth.md)
    auth: str = "password"
    provider: str = "generic"
    client_id: str = ""
    client_secret: str = field(default="", repr=False)  # Google desktop clients only
    tenant: str = ""  # Microsoft: "common", "organizations", "consumers" or a tenant id
    scopes: list[str] = field(default_factory=list)
    sasl: str = ""  # "xoauth2" | "oauthbearer"; default per provider
    auth_url: str = ""
    token_url: str = ""
    device_url: str = ""

    @property
    def is_local(self) -> bool:
        return bool(self.path)

    @property
    def email(self) -> str:
        if self.address:
            return self.address.lower()
        return self.username.lower() if "@" in self.username else ""

    @property
    def domains(self) -> list[str]:
        """own_domains, defaulting to the username's domain."""
        if self.own_domains:
            return [d.lower().strip(".") for d in self.own_domains]
        return [self.email.rsplit("@", 1)[1]] if "@" in self.email else []

    def roles(self) -> dict[str, str]:
        """folder -> role, sent first (DESIGN.md: friends and replies depend on it)."""
        out: dict[str, str] = {}
        for role in ("sent", "ham", "spam"):
            for folder in getattr(self, role):
                out.setdefault(folder, role)
        return out

    def to_toml_dict(self) -> dict[str, Any]:
        """What export writes: never the plain password unless the file had one."""
        out: dict[str, Any] = {"name": self.name}
        for key in _ACCOUNT_KEYS:
            if key == "name":
                continue
            value = getattr(self, key)
            default = Account.__dataclass_fields__[key].default
            if key == "password":
                continue
            if value in ("", [], None) or (not callable(default) and value == default):
                continue
            out[key] = value
        return out


@dataclass
class Settings:
    dns_servers: list[str] = field(default_factory=list)
    dnsbl_zones: list[str] | None = None
    modules: list[str] | None = None
    cache: str = ""
    #: every other key, the modules' flat keys included (`reachability_port`, ...)
    extra: dict[str, Any] = field(default_factory=dict)
    #: modules that have a `[modules.NAME]` table: a plug-in runs only when named
    module_tables: list[str] = field(default_factory=list)

    def value(self, key: str, default: Any = None) -> Any:
        """A setting by its flat key, whichever field holds it."""
        return self.as_dict().get(key, default)

    def set_value(self, key: str, value: Any) -> None:
        """Set (or with None, clear) a setting by its flat key."""
        if key == "dns_servers":
            self.dns_servers = list(value or [])
        elif key in ("dnsbl_zones", "modules"):
            setattr(self, key, None if value is None else list(value))
        elif key == "cache":
            self.cache = value or ""
        elif value is None:
            self.extra.pop(key, None)
        else:
            self.extra[key] = value

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.extra)
        out["dns_servers"] = list(self.dns_servers)
        if self.dnsbl_zones is not None:
            out["dnsbl_zones"] = list(self.dnsbl_zones)
        if self.modules is not None:
            out["modules"] = list(self.modules)
        if self.cache:
            out["cache"] = self.cache
        return out


@dataclass
class Config:
    settings: Settings = field(default_factory=Settings)
    accounts: list[Account] = field(default_factory=list)
    path: Path | None = None


def _check_type(where: str, key: str, value: Any, expected: Any) -> None:
    if expected is int and isinstance(value, bool):
        raise ConfigError(f"{where}: '{key}' must be a number, not {value!r}")
    if not isinstance(value, expected):
        names = {
            list: "a list",
            str: "a string",
            int: "a number",
            bool: "true or false",
            dict: "a table",
        }
        want = names.get(expected, "a number") if not isinstance(expected, tuple) else "a number"
        raise ConfigError(f"{where}: '{key}' must be {want}, not {type(value).__name__}")
    if expected is list and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: '{key}' must be a list of strings")
    if expected is dict and not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value.values()
    ):
        raise ConfigError(f"{where}: '{key}' must map names to numbers")


def parse_config(
    data: dict[str, Any],
    source: str = "accounts file",
    *,
    require_roles: bool = True,
    registry: Any = None,
) -> Config:
    """require_roles=False: accept accounts with no folder mapped yet (the desktop app saves
    that state between adding an account and mapping its folders). `registry` declares the
    modules' settings (default: every module installed)."""
    cfg = Config()
    raw_settings = data.get("settings", {})
    if not isinstance(raw_settings, dict):
        raise ConfigError(f"{source}: [settings] must be a table")
    if registry is None:
        from mailstats.modules import available_modules

        registry = available_modules()
    declared = registry.settings_of()
    extra = {}
    for key, value in raw_settings.items():
        if key in _SETTINGS_KEYS:
            _check_type(f"{source} [settings]", key, value, _SETTINGS_KEYS[key])
            if key in _POSITIVE_SETTINGS and not value > 0:
                raise ConfigError(f"{source} [settings]: '{key}' must be more than 0 seconds")
        elif key in declared:
            _check_setting(f"{source} [settings]", key, value, declared[key][1])
        else:
            raise ConfigError(f"{source} [settings]: unknown key '{key}'")
        extra[key] = value
    tables = _module_tables(data.get("modules", {}), source, registry, extra)
    cfg.settings = Settings(
        dns_servers=list(extra.pop("dns_servers", [])),
        dnsbl_zones=extra.pop("dnsbl_zones", None),
        modules=extra.pop("modules", None),
        cache=os.path.expanduser(extra.pop("cache", "")),
        extra=extra,
        module_tables=tables,
    )
    for spec in cfg.settings.dns_servers:
        _check_server(f"{source} [settings]", spec)
    raw_accounts = data.get("accounts", [])
    if not isinstance(raw_accounts, list) or (require_roles and not raw_accounts):
        raise ConfigError(f"{source}: no [[accounts]] defined")
    seen: set[str] = set()
    for i, raw in enumerate(raw_accounts, 1):
        cfg.accounts.append(_parse_account(raw, f"{source}, account #{i}", seen, require_roles))
    unknown_top = set(data) - {"settings", "accounts", "modules"}
    if unknown_top:
        raise ConfigError(f"{source}: unknown section(s) {', '.join(sorted(unknown_top))}")
    return cfg


def _check_setting(where: str, key: str, value: Any, setting: Any) -> None:
    problem = setting.problem(value)
    if problem:
        raise ConfigError(f"{where}: '{key}' {problem}, not {value!r}")


def _module_tables(raw: Any, source: str, registry: Any, extra: dict[str, Any]) -> list[str]:
    """`[modules.NAME]` tables: each key a setting NAME declares, stored under its flat key
    (so `[modules.dnsbl] zones` and `[settings] dnsbl_zones` are one setting)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [modules] must hold one table per module")
    names = []
    for name, table in raw.items():
        where = f"{source} [modules.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        module = registry.by_name(name)
        if module is None:
            raise ConfigError(f"{where}: no module named '{name}' is installed")
        own = {st.name: (st.flat_key(name), st) for st in module.settings}
        for key, value in table.items():
            if key not in own:
                known = ", ".join(own) or "none"
                raise ConfigError(f"{where}: unknown key '{key}' (this module's settings: {known})")
            flat, setting = own[key]
            _check_setting(where, key, value, setting)
            if flat in extra and extra[flat] != value:
                raise ConfigError(f"{where}: '{key}' is also set as [settings] {flat}")
            extra[flat] = value
        names.append(name)
    return names


def _check_server(where: str, spec: str) -> None:
    from mailstats.services.dns import parse_server

    try:
        host, port = parse_server(spec)
        if not host or not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{where}: dns server {spec!r} is not host or host:port") from None


def _parse_account(raw: Any, where: str, seen: set[str], require_roles: bool = True) -> Account:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: 'name' is missing")
    where = f"{where.split(', account')[0]}, account '{name}'"
    if name in seen:
        raise ConfigError(f"{where}: the name is used twice")
    seen.add(name)
    for key, value in raw.items():
        if key not in _ACCOUNT_KEYS:
            raise ConfigError(f"{where}: unknown key '{key}'")
        _check_type(where, key, value, _ACCOUNT_KEYS[key])
    acct = Account(**{k: v for k, v in raw.items()})
    _apply_provider(acct, raw, where, default_folders=require_roles)
    if acct.path:
        acct.path = os.path.expanduser(acct.path)
        if acct.host:
            raise ConfigError(f"{where}: give either 'host' or 'path', not both")
    else:
        if not acct.host:
            raise ConfigError(f"{where}: 'host' (or 'path' for a local mail store) is missing")
        if acct.security not in SECURITY:
            raise ConfigError(
                f"{where}: 'security' must be one of {', '.join(SECURITY)}, not {acct.security!r}"
            )
        if not acct.username:
            raise ConfigError(f"{where}: 'username' is missing")
        if not acct.port:
            acct.port = 993 if acct.security == "ssl" else 143
        if not 0 < acct.port < 65536:
            raise ConfigError(f"{where}: 'port' {acct.port} is out of range")
    if acct.labels not in LABELS:
        raise ConfigError(f"{where}: 'labels' must be 'hand' or 'provider'")
    if require_roles and not (acct.ham or acct.spam or acct.sent):
        raise ConfigError(f"{where}: map at least one folder with 'ham', 'spam' or 'sent'")
    roles: dict[str, str] = {}
    for role in ROLES:
        for folder in getattr(acct, role):
            if folder in roles:
                raise ConfigError(f"{where}: folder {folder!r} is both {roles[folder]} and {role}")
            roles[folder] = role
    return acct


AUTH = ("password", "oauth2")


def _apply_provider(
    acct: Account, raw: dict[str, Any], where: str, default_folders: bool = True
) -> None:
    """A known provider pre-fills server, sign-in and folders; relays are merged."""
    from mailstats.accounts.providers import PROVIDERS, merge_relays, profile_for
    from mailstats.mail.receivers import OFF, RECEIVERS

    allowed = [*PROVIDERS, *(r for r in RECEIVERS if r not in PROVIDERS), OFF]
    if acct.provider not in allowed:
        raise ConfigError(f"{where}: 'provider' must be one of {', '.join(allowed)}")
    prof = profile_for(acct.provider)
    if not acct.path:
        if not acct.host and prof.host:
            acct.host, acct.security = prof.host, prof.security
            acct.port = acct.port or prof.port
        if "auth" not in raw:
            acct.auth = prof.auth
        if default_folders and not (acct.ham or acct.spam or acct.sent):
            # Only for batch use: the app leaves unmapped accounts unmapped so its Folders
            # screen guesses from the server's own folder names.
            acct.ham, acct.spam, acct.sent = list(prof.ham), list(prof.spam), list(prof.sent)
    if acct.auth not in AUTH:
        raise ConfigError(f"{where}: 'auth' must be 'password' or 'oauth2', not {acct.auth!r}")
    if acct.sasl and acct.sasl.lower() not in ("xoauth2", "oauthbearer"):
        raise ConfigError(f"{where}: 'sasl' must be 'xoauth2' or 'oauthbearer'")
    acct.trusted_relays = merge_relays(acct.trusted_relays, acct.provider)


def load_config(path: str | os.PathLike[str], *, require_roles: bool = True) -> Config:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    cfg = parse_config(data, str(p), require_roles=require_roles)
    cfg.path = p
    base = p.parent
    for acct in cfg.accounts:
        if acct.path and not os.path.isabs(acct.path):
            acct.path = str((base / acct.path).resolve())
    if cfg.settings.cache and not os.path.isabs(cfg.settings.cache):
        cfg.settings.cache = str((base / cfg.settings.cache).resolve())
    return cfg


def resolve_password(acct: Account) -> str:
    """password_env, then password, then the system keyring; '' when none is found."""
    if acct.password_env:
        value = os.environ.get(acct.password_env)
        if value:
            return value
    if acct.password:
        return acct.password
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, f"{acct.name}:{acct.username}") or ""
    except Exception:  # noqa: BLE001 - no keyring backend is a normal state on servers
        return ""


def store_password(acct: Account, password: str) -> None:
    import keyring

    keyring.set_password(KEYRING_SERVICE, f"{acct.name}:{acct.username}", password)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # settings.dns_budgets: an inline table, keys quoted
        pairs = (f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    return '"' + "".join(_toml_char(c) for c in str(value)) + '"'


def _toml_char(c: str) -> str:
    """One character of a TOML basic string: quotes, backslashes and control characters
    escaped (TOML allows none of them raw; a full name pasted with a stray CR would
    otherwise make the whole file unreadable)."""
    if c == '"' or c == "\\":
        return "\\" + c
    if c in "\n\t":
        return "\\n" if c == "\n" else "\\t"
    if ord(c) < 0x20 or ord(c) == 0x7F:
        return f"\\u{ord(c):04X}"
    return c


def dump_config(cfg: Config) -> str:
    """TOML text for the file; plain passwords are not written (they go to the keyring)."""
    lines = ["[settings]"]
    for key, value in cfg.settings.as_dict().items():
        lines.append(f"{key} = {_toml_value(value)}")
    for name in cfg.settings.module_tables:
        # the table names the module (a plug-in runs only when named); values stay flat above
        lines.extend(["", f"[modules.{name}]"])
    for acct in cfg.accounts:
        lines.append("")
        lines.append("[[accounts]]")
        for key, value in acct.to_toml_dict().items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
