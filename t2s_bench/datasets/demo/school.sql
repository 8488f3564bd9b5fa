-- School: departments, teachers, students, courses and enrolments.
CREATE TABLE department (
    dept_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    building TEXT,
    budget REAL
);
CREATE TABLE teacher (
    teacher_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    dept_id INTEGER,
    hire_year INTEGER,
    salary REAL,
    FOREIGN KEY (dept_id) REFERENCES department(dept_id)
);
CREATE TABLE student (
    student_id INTEGER PRIMARY KEY,
    first_name TEXT,
    last_name TEXT,
    age INTEGER,
    city TEXT,
    enrollment_year INTEGER,
    advisor_id INTEGER,
    FOREIGN KEY (advisor_id) REFERENCES teacher(teacher_id)
);
CREATE TABLE course (
    course_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    dept_id INTEGER,
    credits INTEGER,
    teacher_id INTEGER,
    FOREIGN KEY (dept_id) REFERENCES department(dept_id),
    FOREIGN KEY (teacher_id) REFERENCES teacher(teacher_id)
);
CREATE TABLE enrollment (
    student_id INTEGER,
    course_id INTEGER,
    semester TEXT,
    grade INTEGER,
    PRIMARY KEY (student_id, course_id),
    FOREIGN KEY (student_id) REFERENCES student(student_id),
    FOREIGN KEY (course_id) REFERENCES course(course_id)
);
INSERT INTO department VALUES (1, 'Mathematics', 'Gauss Hall', 420000.0);
INSERT INTO department VALUES (2, 'Physics', 'Curie Building', 510000.0);
INSERT INTO department VALUES (3, 'History', 'Old Library', 260000.0);
INSERT INTO department VALUES (4, 'Computer Science', 'Turing Centre', 690000.0);
INSERT INTO department VALUES (5, 'Biology', 'Darwin Wing', 450000.0);
INSERT INTO department VALUES (6, 'Literature', 'Old Library', 210000.0);
INSERT INTO teacher VALUES (1, 'Alice Moreau', 1, 2005, 71000.0);
INSERT INTO teacher VALUES (2, 'Bruno Keller', 2, 2007, 58000.0);
INSERT INTO teacher VALUES (3, 'Chen Wei', 3, 1997, 64000.0);
INSERT INTO teacher VALUES (4, 'Dana Okafor', 4, 2006, 59000.0);
INSERT INTO teacher VALUES (5, 'Elena Rossi', 5, 2011, 79000.0);
INSERT INTO teacher VALUES (6, 'Farid Haddad', 6, 1996, 63000.0);
INSERT INTO teacher VALUES (7, 'Grace Lindqvist', 1, 2008, 105500.0);
INSERT INTO teacher VALUES (8, 'Hiro Tanaka', 2, 1997, 82500.0);
INSERT INTO teacher VALUES (9, 'Ines Duarte', 3, 1997, 106000.0);
INSERT INTO teacher VALUES (10, 'Jonas Berg', 4, 1996, 67500.0);
INSERT INTO teacher VALUES (11, 'Kavya Rao', 5, 2002, 59500.0);
INSERT INTO teacher VALUES (12, 'Liam O''Brien', 6, 2013, 102500.0);
INSERT INTO teacher VALUES (13, 'Maria Santos', 1, 1996, 80000.0);
INSERT INTO teacher VALUES (14, 'Nils Petersen', 2, 1996, 69000.0);
INSERT INTO teacher VALUES (15, 'Olga Ivanova', 3, 2004, 105500.0);
INSERT INTO teacher VALUES (16, 'Pedro Alves', 4, 1999, 67000.0);
INSERT INTO teacher VALUES (17, 'Quinn Murphy', 5, 2013, 91000.0);
INSERT INTO teacher VALUES (18, 'Rosa Jimenez', 6, 2012, 75000.0);
INSERT INTO teacher VALUES (19, 'Samuel Adeyemi', 4, 1998, 76000.0);
INSERT INTO teacher VALUES (20, 'Tara Singh', 4, 2006, 64000.0);
INSERT INTO student VALUES (1, 'Ava', 'Green', 19, 'Boston', 2021, 16);
INSERT INTO student VALUES (2, 'Ben', 'Green', 24, 'Boston', 2023, 19);
INSERT INTO student VALUES (3, 'Chloe', 'White', 23, 'Seattle', 2021, 6);
INSERT INTO student VALUES (4, 'David', 'Thomas', 19, 'Seattle', 2023, 11);
INSERT INTO student VALUES (5, 'Emma', 'White', 22, 'Chicago', 2020, 17);
INSERT INTO student VALUES (6, 'Felix', 'Thompson', 20, 'Boston', 2021, 16);
INSERT INTO student VALUES (7, 'Gina', 'Thompson', 18, 'Chicago', 2022, 11);
INSERT INTO student VALUES (8, 'Henry', 'Wright', 25, 'Portland', 2020, 3);
INSERT INTO student VALUES (9, 'Isla', 'Johnson', 25, 'Chicago', 2020, 10);
INSERT INTO student VALUES (10, 'Jack', 'Hall', 25, 'Seattle', 2023, 12);
INSERT INTO student VALUES (11, 'Kira', 'Smith', 25, 'Boston', 2021, 20);
INSERT INTO student VALUES (12, 'Leo', 'Taylor', 25, 'Boston', 2021, 10);
INSERT INTO student VALUES (13, 'Mia', 'Wilson', 21, 'Chicago', 2023, 16);
INSERT INTO student VALUES (14, 'Noah', 'Brown', 20, 'Portland', 2023, 18);
INSERT INTO student VALUES (15, 'Olivia', 'Johnson', 20, 'Chicago', 2022, 14);
INSERT INTO student VALUES (16, 'Paul', 'Wright', 24, 'Austin', 2021, 3);
INSERT INTO student VALUES (17, 'Ruby', 'Davies', 20, 'Austin', 2021, 1);
INSERT INTO student VALUES (18, 'Sam', 'Hughes', 20, 'Seattle', 2022, 1);
INSERT INTO student VALUES (19, 'Tess', 'Wilson', 24, 'Chicago', 2022, 20);
INSERT INTO student VALUES (20, 'Umar', 'Hall', 23, 'Denver', 2020, 15);
INSERT INTO student VALUES (21, 'Vera', 'Green', 24, 'Chicago', 2023, 13);
INSERT INTO student VALUES (22, 'Will', 'Taylor', 25, 'Chicago', 2020, 7);
INSERT INTO student VALUES (23, 'Xena', 'Brown', 21, 'Portland', 2021, 4);
INSERT INTO student VALUES (24, 'Yusuf', 'Walker', 18, 'Chicago', 2020, 19);
INSERT INTO student VALUES (25, 'Zoe', 'Wilson', 26, 'Chicago', 2022, 20);
INSERT INTO student VALUES (26, 'Adam', 'Smith', 19, 'Austin', 2023, 5);
INSERT INTO student VALUES (27, 'Bella', 'Johnson', 23, 'Boston', 2023, 4);
INSERT INTO student VALUES (28, 'Carl', 'Taylor', 25, 'Portland', 2023, 16);
INSERT INTO student VALUES (29, 'Dora', 'Roberts', 19, 'Denver', 2020, 11);
INSERT INTO student VALUES (30, 'Eli', 'Johnson', 25, 'Denver', 2020, 7);
INSERT INTO student VALUES (31, 'Fiona', 'Edwards', 23, 'Denver', 2020, 17);
INSERT INTO student VALUES (32, 'George', 'Roberts', 19, 'Seattle', 2022, 6);
INSERT INTO student VALUES (33, 'Hana', 'Wright', 21, 'Chicago', 2022, 8);
INSERT INTO student VALUES (34, 'Ivan', 'Wood', 21, 'Austin', 2023, 8);
INSERT INTO student VALUES (35, 'Julia', 'Evans', 26, 'Portland', 2022, 1);
INSERT INTO student VALUES (36, 'Kai', 'Smith', 22, 'Portland', 2022, 7);
INSERT INTO student VALUES (37, 'Lena', 'Wood', 23, 'Portland', 2022, 12);
INSERT INTO student VALUES (38, 'Max', 'Brown', 21, 'Chicago', 2021, 16);
INSERT INTO student VALUES (39, 'Nora', 'Evans', 23, 'Austin', 2023, 20);
INSERT INTO student VALUES (40, 'Oscar', 'Wood', 18, 'Portland', 2022, 3);
INSERT INTO course VALUES (1, 'Calculus I', 1, 4, 13);
INSERT INTO course VALUES (2, 'Linear Algebra', 1, 4, 1);
INSERT INTO course VALUES (3, 'Probability', 1, 3, 7);
INSERT INTO course VALUES (4, 'Classical Mechanics', 2, 4, 14);
INSERT INTO course VALUES (5, 'Quantum Physics', 2, 4, 2);
INSERT INTO course VALUES (6, 'Astrophysics', 2, 3, 8);
INSERT INTO course VALUES (7, 'Ancient Rome', 3, 3, 3);
INSERT INTO course VALUES (8, 'Modern Europe', 3, 3, 9);
INSERT INTO course VALUES (9, 'Databases', 4, 4, 16);
INSERT INTO course VALUES (10, 'Algorithms', 4, 4, 4);
INSERT INTO course VALUES (11, 'Machine Learning', 4, 4, 19);
INSERT INTO course VALUES (12, 'Operating Systems', 4, 3, 19);
INSERT INTO course VALUES (13, 'Genetics', 5, 4, 11);
INSERT INTO course VALUES (14, 'Ecology', 5, 3, 17);
INSERT INTO course VALUES (15, 'Poetry', 6, 2, 6);
INSERT INTO course VALUES (16, 'The Novel', 6, 3, NULL);
INSERT INTO course VALUES (17, 'Discrete Mathematics', 1, 3, 1);
INSERT INTO course VALUES (18, 'Cell Biology', 5, 4, 5);
INSERT INTO enrollment VALUES (1, 1, 'Fall 2024', 61);
INSERT INTO enrollment VALUES (1, 5, 'Fall 2024', 90);
INSERT INTO enrollment VALUES (2, 12, 'Fall 2024', 93);
INSERT INTO enrollment VALUES (2, 5, 'Fall 2023', 85);
INSERT INTO enrollment VALUES (2, 17, 'Fall 2024', 60);
INSERT INTO enrollment VALUES (2, 1, 'Spring 2024', 64);
INSERT INTO enrollment VALUES (3, 1, 'Spring 2024', 84);
INSERT INTO enrollment VALUES (3, 9, 'Fall 2023', 100);
INSERT INTO enrollment VALUES (3, 7, 'Fall 2024', 72);
INSERT INTO enrollment VALUES (4, 18, 'Fall 2024', 74);
INSERT INTO enrollment VALUES (4, 14, 'Spring 2024', 94);
INSERT INTO enrollment VALUES (4, 5, 'Fall 2024', 85);
INSERT INTO enrollment VALUES (4, 1, 'Spring 2024', 84);
INSERT INTO enrollment VALUES (5, 18, 'Spring 2024', 63);
INSERT INTO enrollment VALUES (5, 5, 'Fall 2024', 52);
INSERT INTO enrollment VALUES (5, 1, 'Fall 2023', 63);
INSERT INTO enrollment VALUES (6, 16, 'Spring 2024', 95);
INSERT INTO enrollment VALUES (6, 4, 'Fall 2024', 85);
INSERT INTO enrollment VALUES (6, 2, 'Fall 2024', 82);
INSERT INTO enrollment VALUES (7, 18, 'Fall 2023', 64);
INSERT INTO enrollment VALUES (7, 2, 'Spring 2024', 54);
INSERT INTO enrollment VALUES (8, 17, 'Fall 2024', 53);
INSERT INTO enrollment VALUES (9, 11, 'Fall 2024', 84);
INSERT INTO enrollment VALUES (10, 9, 'Fall 2024', 67);
INSERT INTO enrollment VALUES (10, 16, 'Fall 2024', 85);
INSERT INTO enrollment VALUES (11, 18, 'Spring 2024', 59);
INSERT INTO enrollment VALUES (11, 7, 'Spring 2024', 80);
INSERT INTO enrollment VALUES (11, 3, 'Spring 2024', 56);
INSERT INTO enrollment VALUES (12, 14, 'Fall 2024', 71);
INSERT INTO enrollment VALUES (12, 3, 'Fall 2023', 61);
INSERT INTO enrollment VALUES (12, 7, 'Fall 2024', 93);
INSERT INTO enrollment VALUES (13, 5, 'Fall 2023', 99);
INSERT INTO enrollment VALUES (13, 9, 'Fall 2023', 77);
INSERT INTO enrollment VALUES (13, 18, 'Spring 2024', 62);
INSERT INTO enrollment VALUES (13, 8, 'Fall 2024', 66);
INSERT INTO enrollment VALUES (14, 14, 'Spring 2024', 78);
INSERT INTO enrollment VALUES (14, 17, 'Fall 2023', 74);
INSERT INTO enrollment VALUES (14, 13, 'Spring 2024', 57);
INSERT INTO enrollment VALUES (15, 1, 'Fall 2024', 53);
INSERT INTO enrollment VALUES (15, 11, 'Spring 2024', 73);
INSERT INTO enrollment VALUES (15, 8, 'Fall 2024', 91);
INSERT INTO enrollment VALUES (16, 17, 'Fall 2023', 58);
INSERT INTO enrollment VALUES (16, 3, 'Fall 2023', 68);
INSERT INTO enrollment VALUES (16, 4, 'Spring 2024', 54);
INSERT INTO enrollment VALUES (17, 9, 'Fall 2024', 68);
INSERT INTO enrollment VALUES (17, 5, 'Spring 2024', 61);
INSERT INTO enrollment VALUES (17, 14, 'Fall 2024', 84);
INSERT INTO enrollment VALUES (18, 11, 'Fall 2024', 63);
INSERT INTO enrollment VALUES (18, 3, 'Spring 2024', 56);
INSERT INTO enrollment VALUES (18, 9, 'Spring 2024', 53);
INSERT INTO enrollment VALUES (18, 1, 'Fall 2024', 57);
INSERT INTO enrollment VALUES (18, 13, 'Spring 2024', 57);
INSERT INTO enrollment VALUES (19, 3, 'Spring 2024', 52);
INSERT INTO enrollment VALUES (19, 9, 'Spring 2024', 87);
INSERT INTO enrollment VALUES (19, 4, 'Spring 2024', 69);
INSERT INTO enrollment VALUES (20, 2, 'Fall 2023', 62);
INSERT INTO enrollment VALUES (20, 17, 'Spring 2024', 55);
INSERT INTO enrollment VALUES (20, 8, 'Fall 2023', 64);
INSERT INTO enrollment VALUES (21, 10, 'Spring 2024', 84);
INSERT INTO enrollment VALUES (21, 17, 'Fall 2024', 63);
INSERT INTO enrollment VALUES (21, 7, 'Spring 2024', 74);
INSERT INTO enrollment VALUES (21, 5, 'Fall 2023', 68);
INSERT INTO enrollment VALUES (22, 1, 'Fall 2024', 84);
INSERT INTO enrollment VALUES (22, 18, 'Fall 2024', 64);
INSERT INTO enrollment VALUES (23, 8, 'Fall 2024', 79);
INSERT INTO enrollment VALUES (23, 4, 'Fall 2024', 83);
INSERT INTO enrollment VALUES (23, 11, 'Fall 2024', 77);
INSERT INTO enrollment VALUES (23, 14, 'Fall 2024', 71);
INSERT INTO enrollment VALUES (24, 8, 'Fall 2024', 98);
INSERT INTO enrollment VALUES (24, 11, 'Fall 2024', 60);
INSERT INTO enrollment VALUES (24, 7, 'Spring 2024', 74);
INSERT INTO enrollment VALUES (25, 5, 'Fall 2023', 92);
INSERT INTO enrollment VALUES (25, 1, 'Fall 2024', 68);
INSERT INTO enrollment VALUES (26, 6, 'Spring 2024', 84);
INSERT INTO enrollment VALUES (26, 2, 'Fall 2024', 70);
INSERT INTO enrollment VALUES (26, 3, 'Fall 2024', 67);
INSERT INTO enrollment VALUES (26, 11, 'Fall 2024', 70);
INSERT INTO enrollment VALUES (26, 14, 'Fall 2023', 81);
INSERT INTO enrollment VALUES (27, 6, 'Fall 2023', 68);
INSERT INTO enrollment VALUES (27, 9, 'Spring 2024', 73);
INSERT INTO enrollment VALUES (28, 8, 'Spring 2024', 63);
INSERT INTO enrollment VALUES (28, 2, 'Fall 2023', 73);
INSERT INTO enrollment VALUES (28, 10, 'Spring 2024', 57);
INSERT INTO enrollment VALUES (28, 4, 'Spring 2024', 69);
INSERT INTO enrollment VALUES (29, 8, 'Fall 2023', 68);
INSERT INTO enrollment VALUES (29, 17, 'Fall 2023', 61);
INSERT INTO enrollment VALUES (29, 1, 'Spring 2024', 89);
INSERT INTO enrollment VALUES (30, 13, 'Spring 2024', 71);
INSERT INTO enrollment VALUES (30, 1, 'Fall 2024', 66);
INSERT INTO enrollment VALUES (31, 17, 'Fall 2024', 97);
INSERT INTO enrollment VALUES (31, 5, 'Fall 2024', 76);
INSERT INTO enrollment VALUES (32, 16, 'Fall 2024', 93);
INSERT INTO enrollment VALUES (32, 5, 'Fall 2023', 54);
INSERT INTO enrollment VALUES (32, 10, 'Fall 2024', 84);
INSERT INTO enrollment VALUES (32, 12, 'Fall 2024', 79);
INSERT INTO enrollment VALUES (33, 17, 'Fall 2024', 89);
INSERT INTO enrollment VALUES (33, 18, 'Fall 2024', 95);
INSERT INTO enrollment VALUES (33, 1, 'Fall 2024', 93);
INSERT INTO enrollment VALUES (34, 3, 'Fall 2023', 92);
INSERT INTO enrollment VALUES (34, 1, 'Spring 2024', 58);
INSERT INTO enrollment VALUES (34, 2, 'Spring 2024', 80);
INSERT INTO enrollment VALUES (35, 1, 'Spring 2024', 68);
INSERT INTO enrollment VALUES (35, 8, 'Fall 2023', 81);
INSERT INTO enrollment VALUES (36, 17, 'Fall 2024', 85);
INSERT INTO enrollment VALUES (36, 3, 'Fall 2023', 99);
INSERT INTO enrollment VALUES (37, 9, 'Fall 2023', 66);
INSERT INTO enrollment VALUES (37, 3, 'Fall 2024', 93);
INSERT INTO enrollment VALUES (37, 18, 'Spring 2024', 83);
INSERT INTO enrollment VALUES (37, 4, 'Spring 2024', 56);
INSERT INTO enrollment VALUES (37, 12, 'Spring 2024', 95);
