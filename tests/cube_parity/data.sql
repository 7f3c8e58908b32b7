-- Data of models/support.yml: 6 teams, 300 generated tickets and a few on the edges
-- (midnight, the last millisecond of a day, a microsecond past it, NULLs, % and _ in titles).
CREATE TABLE teams (team_id int PRIMARY KEY, name text, region text, founded_at timestamp,
                    budget numeric(10, 2));
INSERT INTO teams VALUES
  (1, 'Core', 'EMEA', '2019-03-04 09:00:00', 1200.50),
  (2, 'Billing', 'EMEA', '2020-07-15 13:30:00', 800.00),
  (3, 'Mobile', 'AMER', '2021-01-01 00:00:00', 950.25),
  (4, 'Web', 'AMER', '2021-11-30 23:59:59.999', 400.00),
  (5, 'Data', 'APAC', '2022-06-01 12:00:00', 1500.00),
  (6, 'Labs', NULL, '2023-02-28 08:15:30', NULL);

CREATE TABLE tickets (ticket_id int PRIMARY KEY, team_id int, title text, status text,
                      tag text, requester text, priority int, hours numeric(8, 2),
                      escalated boolean, opened_at timestamp, closed_at timestamp);
INSERT INTO tickets
SELECT g,
       1 + g % 5,
       (ARRAY['Login fails', 'Refund 50% off', 'export_csv broken', 'Slow page', 'Crash on start'])[1 + g % 5],
       (ARRAY['open', 'closed', 'closed', 'pending', 'spam', 'closed'])[1 + g % 6],
       CASE WHEN g % 7 = 0 THEN NULL ELSE (ARRAY['bug', 'billing', 'ux', 'perf'])[1 + g % 4] END,
       'user' || (g % 37),
       g % 5,
       round((g % 23) * 0.75 + (g % 3) * 0.1, 2),
       g % 4 = 0,
       TIMESTAMP '2024-01-01 00:00:00' + (g * 29) * INTERVAL '1 hour' + (g * 7 % 3600) * INTERVAL '1 second'
         + (g * 13 % 1000) * INTERVAL '1 millisecond',
       CASE WHEN g % 3 = 0 THEN NULL
            ELSE TIMESTAMP '2024-01-01 00:00:00' + (g * 29 + 5 + g % 40) * INTERVAL '1 hour' END
FROM generate_series(1, 300) AS g;
INSERT INTO tickets VALUES
  (1001, 1, 'Midnight sharp', 'open', 'bug', 'edge', 4, 1.00, true, '2024-12-01 00:00:00', NULL),
  (1002, 2, 'Last millisecond', 'closed', NULL, 'edge', 3, 2.50, false, '2024-11-30 23:59:59.999', '2024-12-01 01:00:00'),
  (1003, 3, 'Past the millisecond', 'closed', 'ux', 'edge', 2, 3.25, false, '2024-12-01 23:59:59.9995', '2024-12-02 10:00:00'),
  (1004, 6, 'No date', 'pending', 'perf', NULL, NULL, NULL, NULL, NULL, NULL),
  (1005, NULL, 'No team', 'open', 'bug', 'edge', 1, 0.50, false, '2024-06-15 12:30:45.123', NULL),
  (1006, 4, '100% _done_', 'closed', 'ux', 'user1', 0, 12.00, true, '2024-12-31 23:59:59', '2025-01-01 00:00:00');
