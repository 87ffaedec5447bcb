-- Customers who bought in the last 180 days and agreed to marketing.
select user_id, email, phone, first_name, last_name, zip, country
from customers
where marketing_opt_in and last_order_at >= current_date - interval 180 day
