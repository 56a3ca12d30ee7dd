#!/bin/sh
# Nightly export of the HR database for payroll.
set -e
export PGPASSWORD=Tr0ub4dor-HR-2019
pg_dump -h hr-db.corp.internal -U hr_app hr > /srv/export/hr-$(date +%F).sql
