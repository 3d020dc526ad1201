package corpus

// Word lists of the synthetic corpora. Names are single GPT-2 tokens with a
// leading space, as in the IOI experiments.
var ioiNames = []string{
	"Mary", "John", "Tom", "James", "Michael", "David", "Robert", "William", "Richard", "Joseph",
	"Thomas", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Paul", "Steven", "Andrew", "Kevin",
	"Brian", "George", "Edward", "Jason", "Ryan", "Jacob", "Gary", "Eric", "Stephen", "Larry",
	"Justin", "Scott", "Frank", "Peter", "Jack", "Adam", "Henry", "Alex", "Sam", "Ben",
	"Max", "Kate", "Sarah", "Lisa", "Nancy", "Karen", "Betty", "Helen", "Sandra", "Donna",
	"Carol", "Ruth", "Sharon", "Michelle", "Laura", "Amy", "Anna", "Emma", "Rose", "Grace",
	"Alice", "Jane", "Lucy", "Emily", "Rachel", "Jessica", "Amanda", "Susan", "Linda", "Barbara",
	"Elizabeth", "Jennifer", "Maria", "Victoria", "Chris", "Mike", "Dan", "Joe", "Bob", "Jim",
	"Tim", "Bill", "Kelly",
}

var ioiPlaces = []string{
	"store", "park", "school", "hospital", "restaurant", "office", "station", "garden", "library",
	"museum", "beach", "market", "house", "church", "bank", "cafe", "theater", "airport", "zoo",
	"gym", "bakery", "farm",
}

var ioiObjects = []string{
	"drink", "ring", "book", "kiss", "snack", "bone", "basketball", "computer", "necklace", "apple",
	"letter", "gift", "ticket", "flower", "pen", "hat", "key", "bottle", "cake", "phone", "camera", "map",
}

// ioiTemplates name the pair {1} and {2} (in either order), repeat the
// subject {S}, and end just before the indirect object.
var ioiTemplates = []string{
	"When {1} and {2} went to the {P}, {S} gave a {O} to",
	"Then, {1} and {2} went to the {P}. {S} gave a {O} to",
	"Then, {1} and {2} had a lot of fun at the {P}. {S} gave a {O} to",
	"Then, {1} and {2} were working at the {P}. {S} decided to give a {O} to",
	"Then, {1} and {2} were thinking about going to the {P}. {S} wanted to give a {O} to",
	"Then, {1} and {2} had a long argument, and afterwards {S} said to",
	"After {1} and {2} went to the {P}, {S} gave a {O} to",
	"When {1} and {2} got a {O} at the {P}, {S} decided to give it to",
	"When {1} and {2} got a {O} at the {P}, {S} decided to give the {O} to",
	"While {1} and {2} were working at the {P}, {S} gave a {O} to",
	"While {1} and {2} were commuting to the {P}, {S} gave a {O} to",
	"After the lunch, {1} and {2} went to the {P}. {S} gave a {O} to",
	"Afterwards, {1} and {2} went to the {P}. {S} gave a {O} to",
	"Then, {1} and {2} had a long argument. Afterwards {S} said to",
	"The {P} {1} and {2} went to had a {O}. {S} gave it to",
	"Friends {1} and {2} found a {O} at the {P}. {S} gave it to",
	"On Monday, {1} and {2} met at the {P}, and {S} handed a {O} to",
	"Yesterday {1} and {2} were at the {P}, where {S} threw a {O} to",
}

type country struct {
	name, capital, city, language, currency string
}

// countries holds one capital, one other large city, a main language and the
// currency of each country.
var countries = []country{
	{"France", "Paris", "Lyon", "French", "euro"},
	{"Canada", "Ottawa", "Toronto", "English", "Canadian dollar"},
	{"Germany", "Berlin", "Munich", "German", "euro"},
	{"Italy", "Rome", "Milan", "Italian", "euro"},
	{"Spain", "Madrid", "Barcelona", "Spanish", "euro"},
	{"Portugal", "Lisbon", "Porto", "Portuguese", "euro"},
	{"Japan", "Tokyo", "Osaka", "Japanese", "yen"},
	{"China", "Beijing", "Shanghai", "Chinese", "yuan"},
	{"India", "New Delhi", "Mumbai", "Hindi", "rupee"},
	{"Brazil", "Brasilia", "Rio de Janeiro", "Portuguese", "real"},
	{"Argentina", "Buenos Aires", "Cordoba", "Spanish", "peso"},
	{"Mexico", "Mexico City", "Guadalajara", "Spanish", "peso"},
	{"the United Kingdom", "London", "Manchester", "English", "pound"},
	{"Ireland", "Dublin", "Cork", "English", "euro"},
	{"Australia", "Canberra", "Sydney", "English", "Australian dollar"},
	{"Egypt", "Cairo", "Alexandria", "Arabic", "Egyptian pound"},
	{"Kenya", "Nairobi", "Mombasa", "Swahili", "shilling"},
	{"Nigeria", "Abuja", "Lagos", "English", "naira"},
	{"Greece", "Athens", "Thessaloniki", "Greek", "euro"},
	{"Sweden", "Stockholm", "Gothenburg", "Swedish", "krona"},
	{"Norway", "Oslo", "Bergen", "Norwegian", "krone"},
	{"Denmark", "Copenhagen", "Aarhus", "Danish", "krone"},
	{"Finland", "Helsinki", "Tampere", "Finnish", "euro"},
	{"Poland", "Warsaw", "Krakow", "Polish", "zloty"},
	{"Austria", "Vienna", "Salzburg", "German", "euro"},
	{"the Netherlands", "Amsterdam", "Rotterdam", "Dutch", "euro"},
	{"Hungary", "Budapest", "Debrecen", "Hungarian", "forint"},
	{"the Czech Republic", "Prague", "Brno", "Czech", "koruna"},
	{"Thailand", "Bangkok", "Chiang Mai", "Thai", "baht"},
	{"Vietnam", "Hanoi", "Ho Chi Minh City", "Vietnamese", "dong"},
	{"South Korea", "Seoul", "Busan", "Korean", "won"},
	{"Indonesia", "Jakarta", "Surabaya", "Indonesian", "rupiah"},
	{"Iran", "Tehran", "Isfahan", "Persian", "rial"},
	{"Saudi Arabia", "Riyadh", "Jeddah", "Arabic", "riyal"},
	{"Peru", "Lima", "Cusco", "Spanish", "sol"},
	{"Chile", "Santiago", "Valparaiso", "Spanish", "peso"},
	{"Colombia", "Bogota", "Medellin", "Spanish", "peso"},
	{"Cuba", "Havana", "Santiago de Cuba", "Spanish", "peso"},
	{"Morocco", "Rabat", "Casablanca", "Arabic", "dirham"},
	{"Ethiopia", "Addis Ababa", "Gondar", "Amharic", "birr"},
	{"Ghana", "Accra", "Kumasi", "English", "cedi"},
	{"New Zealand", "Wellington", "Auckland", "English", "New Zealand dollar"},
	{"the Philippines", "Manila", "Cebu City", "Filipino", "peso"},
	{"Pakistan", "Islamabad", "Karachi", "Urdu", "rupee"},
	{"Bangladesh", "Dhaka", "Chittagong", "Bengali", "taka"},
	{"Ukraine", "Kyiv", "Odesa", "Ukrainian", "hryvnia"},
	{"Romania", "Bucharest", "Cluj-Napoca", "Romanian", "leu"},
	{"the United States", "Washington", "New York", "English", "dollar"},
	{"Iceland", "Reykjavik", "Akureyri", "Icelandic", "krona"},
	{"Malaysia", "Kuala Lumpur", "Johor Bahru", "Malay", "ringgit"},
}
