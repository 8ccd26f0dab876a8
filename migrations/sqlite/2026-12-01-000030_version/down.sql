-- tabVersion belongs to Frappe (a Frappe site's database has it): never dropped.
SELECT 1;
