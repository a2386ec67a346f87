"""Imports every model so `Base.metadata` is complete (Alembic, tests)."""

from app.cron.models import CronRun
from app.db import Base
from app.features.audit.models import AuditLog
from app.features.auth.models import PasswordSetupToken, RefreshToken
from app.features.company.models import CompanyDomain, CompanyLogo, CompanySettings
from app.features.compliments.models import Compliment
from app.features.economy.models import CompanyAccount, CompanyLedgerEntry
from app.features.emails.models import SentEmail
from app.features.identity.models import Company, Department, JobTitle, Permission, Role, User, UserRole
from app.features.reports.models import (
    BetaLead,
    BusinessProfile,
    Dataset,
    DatasetFile,
    Report,
    ReportDeletion,
    ReportVersion,
)
from app.features.store.models import (
    Address,
    Prize,
    PrizeImage,
    PrizeVariant,
    Redemption,
    RedemptionTracking,
    VoucherProduct,
    VoucherRedemption,
)
from app.features.users.models import CsvImportPreview, CsvImportRow, UserManager
from app.features.values.models import CompanyValue
from app.features.vouchers.models import VoucherWebhookEvent
from app.features.wallets.models import ExpiryNotice, Wallet, WalletTransaction, WeeklyReset
from app.jobs.models import Job

__all__ = [
    "Address",
    "AuditLog",
    "Base",
    "BetaLead",
    "BusinessProfile",
    "Company",
    "CompanyAccount",
    "CompanyDomain",
    "CompanyLedgerEntry",
    "CompanyLogo",
    "CompanySettings",
    "CompanyValue",
    "Compliment",
    "CronRun",
    "CsvImportPreview",
    "CsvImportRow",
    "Dataset",
    "DatasetFile",
    "Department",
    "ExpiryNotice",
    "Job",
    "JobTitle",
    "PasswordSetupToken",
    "Permission",
    "Prize",
    "PrizeImage",
    "PrizeVariant",
    "Redemption",
    "RedemptionTracking",
    "RefreshToken",
    "Report",
    "ReportDeletion",
    "ReportVersion",
    "Role",
    "SentEmail",
    "User",
    "UserManager",
    "UserRole",
    "VoucherProduct",
    "VoucherRedemption",
    "VoucherWebhookEvent",
    "Wallet",
    "WalletTransaction",
    "WeeklyReset",
]
