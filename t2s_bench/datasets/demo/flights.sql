-- Flights: airlines, airports, aircraft and scheduled flights.
CREATE TABLE airline (
    airline_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    country TEXT,
    founded INTEGER,
    alliance TEXT
);
CREATE TABLE airport (
    code TEXT PRIMARY KEY,
    name TEXT,
    city TEXT,
    country TEXT,
    elevation_m INTEGER
);
CREATE TABLE aircraft (
    aircraft_id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    manufacturer TEXT,
    seats INTEGER,
    range_km INTEGER
);
CREATE TABLE flight (
    flight_id INTEGER PRIMARY KEY,
    flight_number TEXT,
    airline_id INTEGER,
    origin TEXT,
    destination TEXT,
    aircraft_id INTEGER,
    distance_km INTEGER,
    duration_min INTEGER,
    price REAL,
    FOREIGN KEY (airline_id) REFERENCES airline(airline_id),
    FOREIGN KEY (origin) REFERENCES airport(code),
    FOREIGN KEY (destination) REFERENCES airport(code),
    FOREIGN KEY (aircraft_id) REFERENCES aircraft(aircraft_id)
);
INSERT INTO airline VALUES (1, 'Aurora Air', 'Norway', 1998, 'Star Alliance');
INSERT INTO airline VALUES (2, 'Condor Lines', 'Germany', 1955, 'Oneworld');
INSERT INTO airline VALUES (3, 'Sakura Airways', 'Japan', 1951, 'Oneworld');
INSERT INTO airline VALUES (4, 'Pampas Air', 'Argentina', 1972, 'SkyTeam');
INSERT INTO airline VALUES (5, 'Maple Jet', 'Canada', 2005, NULL);
INSERT INTO airline VALUES (6, 'Savanna Airlines', 'Kenya', 1977, 'SkyTeam');
INSERT INTO airline VALUES (7, 'Coral Wings', 'Australia', 1990, 'Star Alliance');
INSERT INTO airline VALUES (8, 'Atlas Connect', 'Morocco', 2012, NULL);
INSERT INTO airport VALUES ('OSL', 'Oslo Gardermoen', 'Oslo', 'Norway', 208);
INSERT INTO airport VALUES ('FRA', 'Frankfurt am Main', 'Frankfurt', 'Germany', 111);
INSERT INTO airport VALUES ('MUC', 'Munich Franz Josef Strauss', 'Munich', 'Germany', 453);
INSERT INTO airport VALUES ('NRT', 'Narita International', 'Tokyo', 'Japan', 41);
INSERT INTO airport VALUES ('HND', 'Haneda', 'Tokyo', 'Japan', 6);
INSERT INTO airport VALUES ('EZE', 'Ministro Pistarini', 'Buenos Aires', 'Argentina', 20);
INSERT INTO airport VALUES ('YYZ', 'Toronto Pearson', 'Toronto', 'Canada', 173);
INSERT INTO airport VALUES ('YVR', 'Vancouver International', 'Vancouver', 'Canada', 4);
INSERT INTO airport VALUES ('NBO', 'Jomo Kenyatta', 'Nairobi', 'Kenya', 1624);
INSERT INTO airport VALUES ('SYD', 'Sydney Kingsford Smith', 'Sydney', 'Australia', 6);
INSERT INTO airport VALUES ('MEL', 'Melbourne Tullamarine', 'Melbourne', 'Australia', 132);
INSERT INTO airport VALUES ('CMN', 'Mohammed V', 'Casablanca', 'Morocco', 200);
INSERT INTO airport VALUES ('JFK', 'John F. Kennedy', 'New York', 'USA', 4);
INSERT INTO airport VALUES ('LAX', 'Los Angeles International', 'Los Angeles', 'USA', 38);
INSERT INTO airport VALUES ('DEN', 'Denver International', 'Denver', 'USA', 1655);
INSERT INTO airport VALUES ('LHR', 'Heathrow', 'London', 'UK', 25);
INSERT INTO airport VALUES ('CDG', 'Charles de Gaulle', 'Paris', 'France', 119);
INSERT INTO airport VALUES ('MAD', 'Adolfo Suarez Barajas', 'Madrid', 'Spain', 610);
INSERT INTO airport VALUES ('GRU', 'Guarulhos', 'Sao Paulo', 'Brazil', 750);
INSERT INTO airport VALUES ('BOG', 'El Dorado', 'Bogota', 'Colombia', 2548);
INSERT INTO aircraft VALUES (1, 'A320neo', 'Airbus', 180, 6300);
INSERT INTO aircraft VALUES (2, 'A350-900', 'Airbus', 325, 15000);
INSERT INTO aircraft VALUES (3, 'A321XLR', 'Airbus', 220, 8700);
INSERT INTO aircraft VALUES (4, '737 MAX 8', 'Boeing', 178, 6570);
INSERT INTO aircraft VALUES (5, '787-9', 'Boeing', 296, 14140);
INSERT INTO aircraft VALUES (6, '777-300ER', 'Boeing', 396, 13650);
INSERT INTO aircraft VALUES (7, 'E195-E2', 'Embraer', 132, 4800);
INSERT INTO aircraft VALUES (8, 'ATR 72-600', 'ATR', 72, 1400);
INSERT INTO aircraft VALUES (9, 'CRJ900', 'Bombardier', 90, 2900);
INSERT INTO aircraft VALUES (10, 'A380-800', 'Airbus', 545, 14800);
INSERT INTO flight VALUES (1, 'AU107', 1, 'EZE', 'NBO', 6, 1373, 137, 319.57);
INSERT INTO flight VALUES (2, 'AU114', 1, 'EZE', 'CMN', 5, 10352, 811, 1087.68);
INSERT INTO flight VALUES (3, 'AU121', 1, 'OSL', 'MAD', 3, 8166, 647, 925.94);
INSERT INTO flight VALUES (4, 'AU128', 1, 'OSL', 'MAD', 3, 4189, 349, 512.01);
INSERT INTO flight VALUES (5, 'AU135', 1, 'OSL', 'YYZ', 3, 6910, 553, 732.9);
INSERT INTO flight VALUES (6, 'AU142', 1, 'OSL', 'LAX', 7, 3064, 264, 382.76);
INSERT INTO flight VALUES (7, 'AU149', 1, 'OSL', 'MAD', 6, 1095, 117, 253.55);
INSERT INTO flight VALUES (8, 'AU156', 1, 'OSL', 'HND', 5, 4429, 367, 538.61);
INSERT INTO flight VALUES (9, 'AU163', 1, 'CMN', 'NBO', 4, 6456, 519, 768.04);
INSERT INTO flight VALUES (10, 'AU170', 1, 'OSL', 'CMN', 2, 12827, 997, 1307.43);
INSERT INTO flight VALUES (11, 'AU177', 1, 'OSL', 'MUC', 5, 5155, 421, 567.95);
INSERT INTO flight VALUES (12, 'CD184', 2, 'FRA', 'CMN', 2, 12310, 958, 1155.9);
INSERT INTO flight VALUES (13, 'CD191', 2, 'OSL', 'MEL', 6, 10393, 814, 1085.37);
INSERT INTO flight VALUES (14, 'CD198', 2, 'FRA', 'JFK', 3, 1082, 116, 262.38);
INSERT INTO flight VALUES (15, 'CD205', 2, 'FRA', 'MUC', 1, 665, 84, 99.85);
INSERT INTO flight VALUES (16, 'CD212', 2, 'FRA', 'MEL', 6, 2042, 188, 359.78);
INSERT INTO flight VALUES (17, 'CD219', 2, 'FRA', 'MEL', 2, 9951, 781, 987.59);
INSERT INTO flight VALUES (18, 'CD226', 2, 'FRA', 'CDG', 3, 2898, 252, 303.82);
INSERT INTO flight VALUES (19, 'CD233', 2, 'YVR', 'HND', 2, 7686, 611, 747.74);
INSERT INTO flight VALUES (20, 'CD240', 2, 'FRA', 'SYD', 5, 6885, 551, 661.65);
INSERT INTO flight VALUES (21, 'SK247', 3, 'NRT', 'GRU', 5, 6039, 487, 731.51);
INSERT INTO flight VALUES (22, 'SK254', 3, 'NRT', 'MAD', 5, 12318, 958, 1211.62);
INSERT INTO flight VALUES (23, 'SK261', 3, 'NRT', 'OSL', 1, 1020, 111, 267.8);
INSERT INTO flight VALUES (24, 'SK268', 3, 'NRT', 'YYZ', 2, 4193, 349, 431.37);
INSERT INTO flight VALUES (25, 'SK275', 3, 'NRT', 'OSL', 6, 10337, 810, 1020.33);
INSERT INTO flight VALUES (26, 'SK282', 3, 'NRT', 'YVR', 6, 8791, 694, 960.19);
INSERT INTO flight VALUES (27, 'SK289', 3, 'NRT', 'DEN', 6, 13626, 1056, 1310.34);
INSERT INTO flight VALUES (28, 'SK296', 3, 'NRT', 'MUC', 6, 5219, 426, 521.71);
INSERT INTO flight VALUES (29, 'PA303', 4, 'LHR', 'GRU', 7, 404, 65, 187.36);
INSERT INTO flight VALUES (30, 'PA310', 4, 'DEN', 'MUC', 6, 12452, 968, 1275.68);
INSERT INTO flight VALUES (31, 'PA317', 4, 'EZE', 'NRT', 2, 4583, 378, 461.47);
INSERT INTO flight VALUES (32, 'PA324', 4, 'EZE', 'SYD', 2, 11960, 932, 1184.4);
INSERT INTO flight VALUES (33, 'PA331', 4, 'EZE', 'DEN', 6, 11535, 900, 1145.15);
INSERT INTO flight VALUES (34, 'PA338', 4, 'EZE', 'YVR', 1, 1699, 162, 235.91);
INSERT INTO flight VALUES (35, 'PA345', 4, 'EZE', 'NBO', 2, 12487, 971, 1203.83);
INSERT INTO flight VALUES (36, 'MJ352', 5, 'MEL', 'YYZ', 5, 6668, 535, 793.12);
INSERT INTO flight VALUES (37, 'MJ359', 5, 'YYZ', 'GRU', 6, 7992, 634, 894.28);
INSERT INTO flight VALUES (38, 'MJ366', 5, 'YYZ', 'OSL', 3, 7463, 594, 857.67);
INSERT INTO flight VALUES (39, 'MJ373', 5, 'YYZ', 'LAX', 6, 10501, 822, 1004.09);
INSERT INTO flight VALUES (40, 'MJ380', 5, 'YYZ', 'EZE', 1, 2669, 235, 286.21);
INSERT INTO flight VALUES (41, 'MJ387', 5, 'YYZ', 'EZE', 2, 5950, 481, 582.5);
INSERT INTO flight VALUES (42, 'SV394', 6, 'NBO', 'HND', 6, 11647, 908, 1098.23);
INSERT INTO flight VALUES (43, 'SV401', 6, 'NBO', 'FRA', 6, 1377, 138, 214.93);
INSERT INTO flight VALUES (44, 'SV408', 6, 'MAD', 'MUC', 6, 12682, 986, 1279.38);
INSERT INTO flight VALUES (45, 'SV415', 6, 'NBO', 'YYZ', 1, 3628, 307, 374.52);
INSERT INTO flight VALUES (46, 'SV422', 6, 'NBO', 'MUC', 5, 13817, 1071, 1405.53);
INSERT INTO flight VALUES (47, 'SV429', 6, 'NBO', 'NRT', 6, 13275, 1030, 1286.75);
INSERT INTO flight VALUES (48, 'CW436', 7, 'SYD', 'CMN', 5, 7242, 578, 696.78);
INSERT INTO flight VALUES (49, 'CW443', 7, 'SYD', 'MEL', 6, 1093, 116, 220.37);
INSERT INTO flight VALUES (50, 'CW450', 7, 'OSL', 'MAD', 5, 8100, 642, 927.0);
INSERT INTO flight VALUES (51, 'CW457', 7, 'LAX', 'OSL', 2, 7450, 593, 798.5);
INSERT INTO flight VALUES (52, 'CW464', 7, 'SYD', 'FRA', 6, 9112, 718, 915.08);
INSERT INTO flight VALUES (53, 'AT471', 8, 'MUC', 'MEL', 4, 3091, 266, 318.19);
INSERT INTO flight VALUES (54, 'AT478', 8, 'CMN', 'SYD', 2, 12787, 994, 1191.83);
INSERT INTO flight VALUES (55, 'AT485', 8, 'CMN', 'NRT', 3, 8352, 661, 917.68);
