-- Store: customers, products, suppliers, orders and order lines.
CREATE TABLE supplier (
    supplier_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    country TEXT
);
CREATE TABLE product (
    product_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT,
    price REAL,
    stock INTEGER,
    supplier_id INTEGER,
    FOREIGN KEY (supplier_id) REFERENCES supplier(supplier_id)
);
CREATE TABLE customer (
    customer_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT,
    city TEXT,
    country TEXT,
    join_date TEXT
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER,
    order_date TEXT,
    status TEXT,
    FOREIGN KEY (customer_id) REFERENCES customer(customer_id)
);
CREATE TABLE order_item (
    order_id INTEGER,
    product_id INTEGER,
    quantity INTEGER,
    PRIMARY KEY (order_id, product_id),
    FOREIGN KEY (order_id) REFERENCES orders(order_id),
    FOREIGN KEY (product_id) REFERENCES product(product_id)
);
INSERT INTO supplier VALUES (1, 'Nordic Goods', 'Sweden');
INSERT INTO supplier VALUES (2, 'Pacific Traders', 'Japan');
INSERT INTO supplier VALUES (3, 'Andes Supply', 'Peru');
INSERT INTO supplier VALUES (4, 'Rhine Wholesale', 'Germany');
INSERT INTO supplier VALUES (5, 'Maple Distribution', 'Canada');
INSERT INTO supplier VALUES (6, 'Lagos Imports', 'Nigeria');
INSERT INTO product VALUES (1, 'Espresso Machine', 'Kitchen', 249.0, 40, 1);
INSERT INTO product VALUES (2, 'Chef Knife', 'Kitchen', 89.5, 25, 1);
INSERT INTO product VALUES (3, 'Cast Iron Pan', 'Kitchen', 45.0, 12, 3);
INSERT INTO product VALUES (4, 'Kettle', 'Kitchen', 39.9, 40, 3);
INSERT INTO product VALUES (5, 'Blender', 'Kitchen', 119.0, 12, 1);
INSERT INTO product VALUES (6, 'Desk Lamp', 'Home', 34.0, 120, 1);
INSERT INTO product VALUES (7, 'Wool Blanket', 'Home', 79.0, 120, 3);
INSERT INTO product VALUES (8, 'Ceramic Vase', 'Home', 28.5, 4, 2);
INSERT INTO product VALUES (9, 'Wall Clock', 'Home', 22.0, 120, 3);
INSERT INTO product VALUES (10, 'Scented Candle', 'Home', 12.5, 150, 3);
INSERT INTO product VALUES (11, 'Running Shoes', 'Sports', 129.0, 120, 4);
INSERT INTO product VALUES (12, 'Yoga Mat', 'Sports', 25.0, 120, 1);
INSERT INTO product VALUES (13, 'Tennis Racket', 'Sports', 149.0, 150, 2);
INSERT INTO product VALUES (14, 'Water Bottle', 'Sports', 15.0, 40, 1);
INSERT INTO product VALUES (15, 'Cycling Helmet', 'Sports', 69.0, 120, 1);
INSERT INTO product VALUES (16, 'Headphones', 'Electronics', 199.0, 40, 4);
INSERT INTO product VALUES (17, 'Smart Watch', 'Electronics', 299.0, 4, 5);
INSERT INTO product VALUES (18, 'USB Charger', 'Electronics', 19.9, 120, 3);
INSERT INTO product VALUES (19, 'Bluetooth Speaker', 'Electronics', 89.0, 85, 2);
INSERT INTO product VALUES (20, 'E-Reader', 'Electronics', 139.0, 25, 1);
INSERT INTO product VALUES (21, 'Notebook', 'Stationery', 6.5, 4, 2);
INSERT INTO product VALUES (22, 'Fountain Pen', 'Stationery', 48.0, 150, 3);
INSERT INTO product VALUES (23, 'Desk Organizer', 'Stationery', 21.0, 60, 2);
INSERT INTO product VALUES (24, 'Sketchbook', 'Stationery', 11.0, 150, 3);
INSERT INTO product VALUES (25, 'Backpack', 'Travel', 74.0, 4, 3);
INSERT INTO product VALUES (26, 'Suitcase', 'Travel', 189.0, 25, 4);
INSERT INTO product VALUES (27, 'Travel Pillow', 'Travel', 18.0, 120, 4);
INSERT INTO product VALUES (28, 'Passport Holder', 'Travel', 24.0, 0, 2);
INSERT INTO product VALUES (29, 'Rain Jacket', 'Clothing', 95.0, 0, 4);
INSERT INTO product VALUES (30, 'Wool Scarf', 'Clothing', 35.0, 120, 4);
INSERT INTO product VALUES (31, 'Noise Cancelling Earbuds', 'Electronics', 159.0, 40, 2);
INSERT INTO customer VALUES (1, 'Olivia Martin', 'olivia.martin@example.com', 'Manchester', 'UK', '2021-07-11');
INSERT INTO customer VALUES (2, 'Lucas Bernard', 'lucas.bernard@example.com', 'Lyon', 'France', '2021-01-11');
INSERT INTO customer VALUES (3, 'Sofia Garcia', 'sofia.garcia@example.com', 'Mumbai', 'India', '2021-07-04');
INSERT INTO customer VALUES (4, 'Mateo Lopez', 'mateo.lopez@example.com', 'Berlin', 'Germany', '2019-12-10');
INSERT INTO customer VALUES (5, 'Emma Schmidt', 'emma.schmidt@example.com', 'Munich', 'Germany', '2021-02-13');
INSERT INTO customer VALUES (6, 'Noah Fischer', 'noah.fischer@example.com', 'Manchester', 'UK', '2023-02-12');
INSERT INTO customer VALUES (7, 'Amelia Clarke', 'amelia.clarke@example.com', 'Manchester', 'UK', '2021-01-09');
INSERT INTO customer VALUES (8, 'Oliver Hughes', 'oliver.hughes@example.com', 'Lyon', 'France', '2019-11-10');
INSERT INTO customer VALUES (9, 'Mia Rossi', 'mia.rossi@example.com', 'Lagos', 'Nigeria', '2020-04-09');
INSERT INTO customer VALUES (10, 'Leon Weber', 'leon.weber@example.com', 'Manchester', 'UK', '2023-06-07');
INSERT INTO customer VALUES (11, 'Hannah Kim', 'hannah.kim@example.com', 'Mumbai', 'India', '2021-07-01');
INSERT INTO customer VALUES (12, 'Daniel Park', 'daniel.park@example.com', 'Mumbai', 'India', '2022-09-18');
INSERT INTO customer VALUES (13, 'Yuki Sato', 'yuki.sato@example.com', 'Berlin', 'Germany', '2019-01-24');
INSERT INTO customer VALUES (14, 'Kenji Ito', 'kenji.ito@example.com', 'Manchester', 'UK', '2022-10-25');
INSERT INTO customer VALUES (15, 'Aisha Bello', 'aisha.bello@example.com', 'Madrid', 'Spain', '2021-08-02');
INSERT INTO customer VALUES (16, 'Tunde Okoye', 'tunde.okoye@example.com', 'Seoul', 'South Korea', '2020-03-16');
INSERT INTO customer VALUES (17, 'Chloe Dubois', 'chloe.dubois@example.com', 'Manchester', 'UK', '2021-05-10');
INSERT INTO customer VALUES (18, 'Hugo Leroy', 'hugo.leroy@example.com', 'Munich', 'Germany', '2021-07-21');
INSERT INTO customer VALUES (19, 'Sara Nilsson', 'sara.nilsson@example.com', 'Berlin', 'Germany', '2021-08-18');
INSERT INTO customer VALUES (20, 'Erik Johansson', 'erik.johansson@example.com', 'Lagos', 'Nigeria', '2022-02-06');
INSERT INTO customer VALUES (21, 'Priya Patel', 'priya.patel@example.com', 'Lagos', 'Nigeria', '2020-02-07');
INSERT INTO customer VALUES (22, 'Arjun Mehta', 'arjun.mehta@example.com', 'Seoul', 'South Korea', '2022-09-08');
INSERT INTO customer VALUES (23, 'Lucia Fernandez', 'lucia.fernandez@example.com', 'Rome', 'Italy', '2021-08-14');
INSERT INTO customer VALUES (24, 'Diego Ruiz', 'diego.ruiz@example.com', 'Madrid', 'Spain', '2023-04-08');
INSERT INTO customer VALUES (25, 'Grace Lee', 'grace.lee@example.com', 'Lyon', 'France', '2020-06-18');
INSERT INTO customer VALUES (26, 'Ethan Wong', 'ethan.wong@example.com', 'Lyon', 'France', '2021-04-12');
INSERT INTO customer VALUES (27, 'Isabel Costa', 'isabel.costa@example.com', 'Munich', 'Germany', '2023-04-01');
INSERT INTO customer VALUES (28, 'Tiago Silva', 'tiago.silva@example.com', 'Stockholm', 'Sweden', '2022-07-14');
INSERT INTO customer VALUES (29, 'Nora Berg', 'nora.berg@example.com', 'Stockholm', 'Sweden', '2023-04-13');
INSERT INTO customer VALUES (30, 'Felix Braun', 'felix.braun@example.com', 'Munich', 'Germany', '2021-01-16');
INSERT INTO orders VALUES (1, 9, '2024-10-12', 'delivered');
INSERT INTO orders VALUES (2, 13, '2024-07-21', 'shipped');
INSERT INTO orders VALUES (3, 23, '2024-08-19', 'shipped');
INSERT INTO orders VALUES (4, 27, '2024-09-28', 'shipped');
INSERT INTO orders VALUES (5, 3, '2024-09-25', 'delivered');
INSERT INTO orders VALUES (6, 8, '2024-10-02', 'cancelled');
INSERT INTO orders VALUES (7, 23, '2024-02-04', 'delivered');
INSERT INTO orders VALUES (8, 8, '2024-10-01', 'delivered');
INSERT INTO orders VALUES (9, 16, '2024-09-08', 'pending');
INSERT INTO orders VALUES (10, 2, '2024-01-07', 'shipped');
INSERT INTO orders VALUES (11, 16, '2024-01-23', 'delivered');
INSERT INTO orders VALUES (12, 7, '2024-08-07', 'delivered');
INSERT INTO orders VALUES (13, 25, '2024-05-04', 'pending');
INSERT INTO orders VALUES (14, 5, '2024-07-02', 'delivered');
INSERT INTO orders VALUES (15, 14, '2024-01-23', 'delivered');
INSERT INTO orders VALUES (16, 3, '2024-03-11', 'delivered');
INSERT INTO orders VALUES (17, 2, '2024-05-22', 'cancelled');
INSERT INTO orders VALUES (18, 9, '2024-02-12', 'shipped');
INSERT INTO orders VALUES (19, 13, '2024-06-25', 'delivered');
INSERT INTO orders VALUES (20, 7, '2024-06-12', 'cancelled');
INSERT INTO orders VALUES (21, 15, '2024-02-26', 'delivered');
INSERT INTO orders VALUES (22, 9, '2024-06-20', 'delivered');
INSERT INTO orders VALUES (23, 24, '2024-10-26', 'cancelled');
INSERT INTO orders VALUES (24, 4, '2024-08-23', 'shipped');
INSERT INTO orders VALUES (25, 6, '2024-01-26', 'cancelled');
INSERT INTO orders VALUES (26, 11, '2024-06-15', 'delivered');
INSERT INTO orders VALUES (27, 13, '2024-03-08', 'shipped');
INSERT INTO orders VALUES (28, 16, '2024-09-18', 'delivered');
INSERT INTO orders VALUES (29, 9, '2024-10-03', 'delivered');
INSERT INTO orders VALUES (30, 23, '2024-08-06', 'delivered');
INSERT INTO orders VALUES (31, 24, '2024-09-28', 'cancelled');
INSERT INTO orders VALUES (32, 10, '2024-05-19', 'delivered');
INSERT INTO orders VALUES (33, 6, '2024-04-08', 'delivered');
INSERT INTO orders VALUES (34, 13, '2024-05-08', 'pending');
INSERT INTO orders VALUES (35, 2, '2024-02-01', 'shipped');
INSERT INTO orders VALUES (36, 10, '2024-04-04', 'delivered');
INSERT INTO orders VALUES (37, 3, '2024-06-17', 'delivered');
INSERT INTO orders VALUES (38, 23, '2024-10-12', 'delivered');
INSERT INTO orders VALUES (39, 5, '2024-01-07', 'delivered');
INSERT INTO orders VALUES (40, 27, '2024-01-27', 'delivered');
INSERT INTO orders VALUES (41, 26, '2024-08-18', 'shipped');
INSERT INTO orders VALUES (42, 26, '2024-07-22', 'pending');
INSERT INTO orders VALUES (43, 13, '2024-12-09', 'shipped');
INSERT INTO orders VALUES (44, 12, '2024-07-14', 'delivered');
INSERT INTO orders VALUES (45, 14, '2024-03-14', 'delivered');
INSERT INTO orders VALUES (46, 12, '2024-08-25', 'delivered');
INSERT INTO orders VALUES (47, 21, '2024-07-03', 'pending');
INSERT INTO orders VALUES (48, 6, '2024-09-06', 'delivered');
INSERT INTO orders VALUES (49, 25, '2024-04-10', 'delivered');
INSERT INTO orders VALUES (50, 11, '2024-01-20', 'cancelled');
INSERT INTO orders VALUES (51, 20, '2024-04-27', 'shipped');
INSERT INTO orders VALUES (52, 17, '2024-03-13', 'delivered');
INSERT INTO orders VALUES (53, 24, '2024-04-02', 'pending');
INSERT INTO orders VALUES (54, 4, '2024-07-20', 'shipped');
INSERT INTO orders VALUES (55, 13, '2024-11-12', 'shipped');
INSERT INTO orders VALUES (56, 25, '2024-08-27', 'delivered');
INSERT INTO orders VALUES (57, 26, '2024-08-17', 'pending');
INSERT INTO orders VALUES (58, 3, '2024-12-11', 'cancelled');
INSERT INTO orders VALUES (59, 13, '2024-11-26', 'delivered');
INSERT INTO orders VALUES (60, 20, '2024-12-23', 'delivered');
INSERT INTO order_item VALUES (1, 3, 2);
INSERT INTO order_item VALUES (2, 31, 1);
INSERT INTO order_item VALUES (2, 10, 2);
INSERT INTO order_item VALUES (2, 28, 1);
INSERT INTO order_item VALUES (2, 27, 4);
INSERT INTO order_item VALUES (3, 3, 4);
INSERT INTO order_item VALUES (4, 8, 2);
INSERT INTO order_item VALUES (4, 26, 5);
INSERT INTO order_item VALUES (4, 4, 1);
INSERT INTO order_item VALUES (4, 5, 4);
INSERT INTO order_item VALUES (5, 26, 2);
INSERT INTO order_item VALUES (6, 31, 3);
INSERT INTO order_item VALUES (6, 5, 5);
INSERT INTO order_item VALUES (6, 21, 4);
INSERT INTO order_item VALUES (7, 17, 2);
INSERT INTO order_item VALUES (7, 31, 4);
INSERT INTO order_item VALUES (7, 19, 3);
INSERT INTO order_item VALUES (8, 15, 3);
INSERT INTO order_item VALUES (8, 31, 2);
INSERT INTO order_item VALUES (9, 1, 4);
INSERT INTO order_item VALUES (9, 31, 3);
INSERT INTO order_item VALUES (10, 3, 4);
INSERT INTO order_item VALUES (10, 8, 3);
INSERT INTO order_item VALUES (10, 22, 2);
INSERT INTO order_item VALUES (11, 12, 1);
INSERT INTO order_item VALUES (11, 22, 3);
INSERT INTO order_item VALUES (11, 13, 5);
INSERT INTO order_item VALUES (11, 7, 1);
INSERT INTO order_item VALUES (12, 8, 2);
INSERT INTO order_item VALUES (12, 15, 3);
INSERT INTO order_item VALUES (13, 20, 4);
INSERT INTO order_item VALUES (13, 6, 4);
INSERT INTO order_item VALUES (13, 29, 1);
INSERT INTO order_item VALUES (13, 8, 5);
INSERT INTO order_item VALUES (14, 20, 2);
INSERT INTO order_item VALUES (15, 13, 3);
INSERT INTO order_item VALUES (15, 15, 1);
INSERT INTO order_item VALUES (16, 21, 5);
INSERT INTO order_item VALUES (16, 30, 4);
INSERT INTO order_item VALUES (17, 27, 2);
INSERT INTO order_item VALUES (17, 12, 1);
INSERT INTO order_item VALUES (17, 11, 1);
INSERT INTO order_item VALUES (17, 15, 1);
INSERT INTO order_item VALUES (18, 18, 2);
INSERT INTO order_item VALUES (19, 3, 2);
INSERT INTO order_item VALUES (19, 2, 3);
INSERT INTO order_item VALUES (19, 23, 5);
INSERT INTO order_item VALUES (19, 16, 4);
INSERT INTO order_item VALUES (20, 1, 4);
INSERT INTO order_item VALUES (20, 21, 1);
INSERT INTO order_item VALUES (20, 14, 4);
INSERT INTO order_item VALUES (20, 8, 1);
INSERT INTO order_item VALUES (21, 7, 5);
INSERT INTO order_item VALUES (21, 24, 3);
INSERT INTO order_item VALUES (21, 3, 3);
INSERT INTO order_item VALUES (22, 24, 3);
INSERT INTO order_item VALUES (22, 23, 3);
INSERT INTO order_item VALUES (22, 11, 1);
INSERT INTO order_item VALUES (23, 1, 2);
INSERT INTO order_item VALUES (24, 26, 4);
INSERT INTO order_item VALUES (24, 30, 2);
INSERT INTO order_item VALUES (24, 14, 4);
INSERT INTO order_item VALUES (25, 27, 2);
INSERT INTO order_item VALUES (25, 23, 5);
INSERT INTO order_item VALUES (25, 25, 2);
INSERT INTO order_item VALUES (26, 17, 2);
INSERT INTO order_item VALUES (27, 21, 1);
INSERT INTO order_item VALUES (28, 14, 1);
INSERT INTO order_item VALUES (28, 29, 1);
INSERT INTO order_item VALUES (29, 14, 4);
INSERT INTO order_item VALUES (30, 14, 5);
INSERT INTO order_item VALUES (30, 15, 2);
INSERT INTO order_item VALUES (31, 25, 3);
INSERT INTO order_item VALUES (32, 24, 4);
INSERT INTO order_item VALUES (32, 7, 2);
INSERT INTO order_item VALUES (33, 29, 2);
INSERT INTO order_item VALUES (33, 30, 3);
INSERT INTO order_item VALUES (33, 19, 1);
INSERT INTO order_item VALUES (34, 21, 1);
INSERT INTO order_item VALUES (34, 26, 4);
INSERT INTO order_item VALUES (35, 27, 3);
INSERT INTO order_item VALUES (35, 15, 1);
INSERT INTO order_item VALUES (36, 20, 5);
INSERT INTO order_item VALUES (36, 27, 2);
INSERT INTO order_item VALUES (37, 20, 1);
INSERT INTO order_item VALUES (37, 25, 1);
INSERT INTO order_item VALUES (37, 22, 5);
INSERT INTO order_item VALUES (38, 12, 3);
INSERT INTO order_item VALUES (39, 20, 2);
INSERT INTO order_item VALUES (40, 22, 3);
INSERT INTO order_item VALUES (40, 12, 1);
INSERT INTO order_item VALUES (40, 6, 2);
INSERT INTO order_item VALUES (40, 20, 1);
INSERT INTO order_item VALUES (41, 14, 1);
INSERT INTO order_item VALUES (42, 21, 1);
INSERT INTO order_item VALUES (42, 18, 2);
INSERT INTO order_item VALUES (43, 22, 1);
INSERT INTO order_item VALUES (43, 10, 3);
INSERT INTO order_item VALUES (43, 14, 5);
INSERT INTO order_item VALUES (44, 21, 4);
INSERT INTO order_item VALUES (44, 7, 2);
INSERT INTO order_item VALUES (44, 13, 1);
INSERT INTO order_item VALUES (45, 13, 5);
INSERT INTO order_item VALUES (46, 1, 5);
INSERT INTO order_item VALUES (46, 2, 2);
INSERT INTO order_item VALUES (47, 24, 2);
INSERT INTO order_item VALUES (47, 17, 3);
INSERT INTO order_item VALUES (47, 6, 3);
INSERT INTO order_item VALUES (48, 13, 4);
INSERT INTO order_item VALUES (49, 30, 4);
INSERT INTO order_item VALUES (50, 3, 2);
INSERT INTO order_item VALUES (50, 29, 2);
INSERT INTO order_item VALUES (50, 23, 5);
INSERT INTO order_item VALUES (50, 20, 4);
INSERT INTO order_item VALUES (51, 19, 1);
INSERT INTO order_item VALUES (51, 7, 4);
INSERT INTO order_item VALUES (52, 5, 2);
INSERT INTO order_item VALUES (53, 22, 3);
INSERT INTO order_item VALUES (54, 21, 5);
INSERT INTO order_item VALUES (54, 14, 2);
INSERT INTO order_item VALUES (54, 10, 4);
INSERT INTO order_item VALUES (55, 6, 4);
INSERT INTO order_item VALUES (55, 1, 2);
INSERT INTO order_item VALUES (55, 20, 4);
INSERT INTO order_item VALUES (55, 16, 5);
INSERT INTO order_item VALUES (56, 13, 3);
INSERT INTO order_item VALUES (56, 4, 4);
INSERT INTO order_item VALUES (56, 3, 3);
INSERT INTO order_item VALUES (56, 5, 1);
INSERT INTO order_item VALUES (57, 2, 2);
INSERT INTO order_item VALUES (58, 2, 5);
INSERT INTO order_item VALUES (59, 28, 1);
INSERT INTO order_item VALUES (60, 5, 4);
INSERT INTO order_item VALUES (60, 29, 3);
