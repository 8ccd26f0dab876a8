-- Frappe's tables are never dropped by this service: they may belong to a Frappe site.
SELECT 1;
