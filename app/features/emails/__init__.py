"""Email: one SMTP service (templates, sent_emails records, rate limit) and the welcome/invite jobs."""
