-- One database per service that owns data (run once, on an empty volume).
CREATE DATABASE ticketing_orders;
CREATE DATABASE ticketing_payments;
CREATE DATABASE ticketing_catalog;
CREATE DATABASE ticketing_users;
