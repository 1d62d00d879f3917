"""The demo's words and weights: names, zones, vehicles, request and summary texts, review
sentences, upsell offers, email failure texts; and its staff and base prices."""

STAFF = (
    ("admin@pitwall.demo", "admin", "Demo Admin"),
    ("support@pitwall.demo", "support", "Demo Support"),
    ("manager@pitwall.demo", "manager", "Demo Manager"),
)
SUPPORT_EMAIL = "support@pitwall.demo"
BASE_PRICE_CENTS = {"chat": 2900, "video": 4900}

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Chris", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley",
    "Steven", "Emily", "Andrew", "Michelle", "Joshua", "Amanda", "Kevin", "Melissa", "Brian",
    "Stephanie", "Jason", "Rebecca", "Ryan", "Laura", "Jacob", "Hannah", "Luis", "Sofia", "Carlos",
    "Maria", "Priya", "Arjun", "Wei", "Mei", "Omar", "Fatima", "Liam", "Olivia", "Noah", "Emma",
    "Ethan", "Chloe",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Patel", "Shah", "Chen", "Wang", "Kim", "Murphy", "O'Brien",
    "Kowalski", "Schmidt", "Rossi",
)
# (IANA zone, weight, region: 0 Americas, 1 Europe, 2 Asia-Pacific)
CUSTOMER_ZONES = (
    ("America/New_York", .28, 0), ("America/Chicago", .17, 0), ("America/Denver", .06, 0),
    ("America/Phoenix", .03, 0), ("America/Los_Angeles", .19, 0), ("America/Toronto", .04, 0),
    ("America/Vancouver", .02, 0), ("Pacific/Honolulu", .01, 0), ("America/Anchorage", .01, 0),
    ("Europe/London", .08, 1), ("Europe/Dublin", .02, 1), ("Australia/Sydney", .05, 2),
    ("Australia/Melbourne", .02, 2), ("Pacific/Auckland", .02, 2),
)
MECHANIC_ZONES = (
    ("America/New_York", .22, 0), ("America/Chicago", .14, 0), ("America/Denver", .05, 0),
    ("America/Los_Angeles", .18, 0), ("America/Toronto", .04, 0), ("Europe/London", .12, 1),
    ("Europe/Berlin", .07, 1), ("Asia/Kolkata", .10, 2), ("Australia/Sydney", .08, 2),
)
CHANNEL_WEIGHTS = (.34, .22, .16, .12, .06, .10)  # order of s.ACQUISITION_CHANNELS
CATEGORY_WEIGHTS = (.19, .12, .14, .08, .08, .07, .20, .06, .06)  # order of s.REQUEST_CATEGORIES
CATEGORY_LABELS = (
    "engine", "brake", "electrical", "transmission", "suspension", "A/C and heating",
    "diagnostic", "tyre", "general",
)
VEHICLES = (
    ("Toyota", "Camry"), ("Toyota", "Corolla"), ("Toyota", "RAV4"), ("Toyota", "Tacoma"),
    ("Honda", "Civic"), ("Honda", "Accord"), ("Honda", "CR-V"), ("Ford", "F-150"), ("Ford", "Focus"),
    ("Ford", "Escape"), ("Ford", "Mustang"), ("Chevrolet", "Silverado"), ("Chevrolet", "Malibu"),
    ("Chevrolet", "Equinox"), ("Nissan", "Altima"), ("Nissan", "Rogue"), ("Jeep", "Wrangler"),
    ("Jeep", "Grand Cherokee"), ("Hyundai", "Elantra"), ("Hyundai", "Tucson"), ("Kia", "Sorento"),
    ("Subaru", "Outback"), ("Subaru", "Forester"), ("Volkswagen", "Jetta"), ("Volkswagen", "Golf"),
    ("BMW", "3 Series"), ("Mercedes-Benz", "C-Class"), ("Audi", "A4"), ("Tesla", "Model 3"),
    ("Mazda", "CX-5"), ("Ram", "1500"), ("GMC", "Sierra"),
)
CLASSICS = (("Volkswagen", "Beetle"), ("Ford", "Mustang"), ("Chevrolet", "Camaro"),
            ("Porsche", "911"), ("Datsun", "240Z"), ("Mercedes-Benz", "280SL"))
SYMPTOMS = (  # per category, same order as s.REQUEST_CATEGORIES
    ("makes a knocking noise when accelerating", "idles rough with the check engine light on",
     "loses power going uphill", "stalls at stop lights"),
    ("squeals every time I brake", "has a spongy brake pedal", "pulls to the left when braking",
     "grinds from the front wheels"),
    ("has a battery that dies overnight", "has dashboard lights that flicker",
     "won't crank, it just clicks", "has power windows that stopped working"),
    ("shifts hard from 2nd to 3rd", "slips when I accelerate", "takes a few seconds to engage reverse",
     "whines in every gear"),
    ("clunks over speed bumps", "feels floaty on the highway", "vibrates through the steering wheel at 60 mph",
     "leans a lot in corners"),
    ("only blows warm air from the A/C", "smells sweet when the heater is on", "has a fan that only works on high",
     "fogs up and the windows won't clear"),
    ("throws code P0420", "throws code P0301", "has a check engine light I can't identify",
     "failed its emissions test"),
    ("slowly loses tyre pressure", "wears the tyres on the inside edge", "keeps the TPMS light on",
     "has a bulge on a sidewall"),
    ("smells like burning oil", "rattles somewhere in the back", "leaks water into the footwell",
     "doesn't respond to the key fob"),
)
CONTEXTS = (
    "", "", " It started last week.", " It's worse when the engine is cold.",
    " A shop quoted me $1,200 and I'd like a second opinion.", " I'm on a road trip and need advice fast.",
    " I already replaced the battery.", " Happens mostly on the highway.",
)
FINDINGS = (
    ("Worn ignition coil on cylinder 3 causing a misfire.", "Carbon build-up on the throttle body.",
     "Low oil level and a leaking valve cover gasket."),
    ("Front pads worn to 2 mm; rotors scored.", "Air in the brake lines.", "Sticking caliper slide pin on the left front."),
    ("Parasitic drain from the glovebox light.", "Corroded battery terminals and a weak alternator.",
     "Blown fuse for the window circuit."),
    ("Transmission fluid low and dark.", "Worn shift solenoid.", "Torque converter shudder at light throttle."),
    ("Worn sway bar end links.", "Leaking rear shocks.", "Out-of-balance front wheels."),
    ("A/C refrigerant low; likely slow leak.", "Heater core seeping coolant.", "Failed blower motor resistor."),
    ("Catalytic converter efficiency below threshold.", "Misfire on cylinder 1 from a fouled plug.",
     "Loose gas cap triggering an EVAP code."),
    ("Slow leak from a nail in the tread.", "Alignment out of spec (toe-in).", "Failed TPMS sensor on the right rear."),
    ("Oil dripping onto the exhaust from the valve cover.", "Loose heat shield on the exhaust.",
     "Blocked sunroof drain tube."),
)
STEPS_TAKEN = (
    "Walked the customer through a visual inspection over video.",
    "Reviewed the freeze-frame data the customer read with an OBD-II scanner.",
    "Had the customer reproduce the noise while recording audio.",
    "Checked fluid levels and condition together on camera.",
    "Went through the service history and recent repairs.",
)
PARTS = (
    ("Ignition coil, spark plugs", "Throttle body cleaner", "Valve cover gasket"),
    ("Front brake pads, rotors", "Brake fluid (DOT 4)", "Caliper slide pin kit"),
    ("None", "Battery terminals, alternator", "15A fuse"),
    ("Transmission fluid (ATF)", "Shift solenoid", "None until further diagnosis"),
    ("Sway bar end links", "Rear shock absorbers", "None"),
    ("R-134a refrigerant, leak dye", "Heater core", "Blower motor resistor"),
    ("Catalytic converter", "Spark plug", "Gas cap"),
    ("Tyre plug kit", "None", "TPMS sensor"),
    ("Valve cover gasket", "Heat shield clamp", "None"),
)
NEXT_STEPS = (
    "Safe to drive short distances; book a shop visit this week.",
    "Replace the parts listed and book a quick follow-up call to confirm.",
    "Monitor for two weeks and send a photo if the symptom returns.",
    "Do not drive until the repair is done.",
    "DIY-friendly repair: follow the guide we shared.",
)
CUSTOMER_FILES = (
    ("dashboard_warning.jpg", "image/jpeg", 2.2e6), ("engine_bay.jpg", "image/jpeg", 3.1e6),
    ("noise_recording.m4a", "audio/mp4", 9e5), ("rattle_video.mp4", "video/mp4", 2.4e7),
    ("obd_scan.pdf", "application/pdf", 3e5), ("shop_quote.pdf", "application/pdf", 2e5),
)
MECHANIC_FILES = (
    ("repair_guide.pdf", "application/pdf", 6e5), ("wiring_diagram.png", "image/png", 1.1e6),
    ("parts_list.pdf", "application/pdf", 1.5e5),
)
MECHANIC_ROLES = ("ASE-certified master technician", "Dealer-trained technician",
                  "Independent shop owner", "Mobile mechanic", "Former fleet maintenance lead")
MECHANIC_STYLES = ("I explain things in plain English.", "Happy to help DIYers save money.",
                   "I'll tell you honestly whether it's safe to drive.", "Quick, practical diagnoses.")
REVIEW_OPENINGS = {
    "good": ("{} was fantastic.", "Really helpful session with {}.", "{} knew exactly what to look for.",
             "Super clear explanations from {}.", "{} saved me a trip to the dealer.", "Thanks {}!"),
    "mixed": ("Session with {} was okay.", "{} was friendly but a bit rushed.", "Decent help from {}."),
    "bad": ("{} didn't seem to listen.", "Not impressed with {}.", "{} was late and rushed."),
}
REVIEW_MIDDLES = {
    "good": ("Found the {} problem in minutes.", "Walked me through the {} check step by step.",
             "Explained the {} issue so I understood it.", "Got my {} problem sorted on the first call."),
    "mixed": ("Pointed me in the right direction on the {} issue.", "The {} advice helped a bit.",
              "Video kept freezing while we looked at the {} problem."),
    "bad": ("Didn't solve my {} problem.", "The {} advice turned out wrong.", "Had to take the {} problem to a shop anyway."),
}
REVIEW_CLOSINGS = {
    "good": ("Will book again.", "Highly recommend.", "Worth every cent.", "Five stars.", ""),
    "mixed": ("Might try again.", "Fine for the price.", ""),
    "bad": ("Wouldn't book again.", "Asked for a refund.", ""),
}
SHORT_NEGATIVE = ("Useless.", "Waste of money.", "Didn't help at all.", "Total ripoff.", "Rude.", "No show.")
PROFANE_SENTENCES = ("The dealer quote was crap, this was way better.", "No bullshit, just answers.",
                     "My old shop did a shitty job, this was great.", "I was pissed off at my dealer, this saved me.")
PROMO_SENTENCES = ("Use code FIXIT20 at https://cheap-parts.example/deal for 20% off parts.",
                   "Check out www.bestautodeals.example for cheaper parts.",
                   "Promo code GARAGE10 gets you a discount at https://partshub.example.")
BURST_TEXTS = ("Best mechanic ever!!!", "Amazing!!! Five stars!!!", "Great great great service!!",
               "10/10 would recommend!!!", "Absolutely perfect!!!", "Top mechanic, so fast!!!")
HIDDEN_TEXTS = {  # reasons without a flag of their own; the text shows the reason
    "harmful_or_illegal": "He showed me how to pull the airbag fuse so the light goes off for inspection.",
    "not_genuine_experience": "Never actually had a session, just leaving a review to test the app.",
    "off_topic": "Anyone know where to buy a cheap roof box? Mine broke on the highway.",
}
UPSELLS = {  # type -> ((title, description, price_cents), ...)
    "follow_up": (("15-minute follow-up video call", "Check in with your mechanic after the repair.", 1900),
                  ("Follow-up chat", "Ask the questions that come up once you're under the hood.", 1500),
                  ("Repair verification call", "Show the finished repair on video and get it checked.", 2900)),
    "maintenance_plan": (("Seasonal maintenance plan", "Four guided check-ups a year.", 9900),
                         ("12-month maintenance plan", "Unlimited chat plus quarterly video inspections.", 19900),
                         ("Brake care plan", "Pad and fluid checks every six months.", 7900)),
    "premium_upgrade": (("Pitwall Premium (monthly)", "Priority booking, free follow-up questions.", 999),
                        ("Pitwall Premium (annual)", "Twelve months of Premium at two months off.", 9900)),
}
OVERRIDE_REASONS = ("Public holiday", "Sick day", "Personal appointment", "Training course",
                    "Family commitment", "Garage inventory day")
FOLLOW_UP_CANCEL_REASONS = ("The follow-up session was cancelled.", "The customer sorted it out themselves.",
                            "The customer booked a new session instead.", "Duplicate of another follow-up.",
                            "No reply from the customer.")
EMAIL_REFUSED = ("rejected by Resend: Invalid `to` field. The email address needs to follow the "
                 "`email@example.com` or `Name <email@example.com>` format.",
                 "rejected by Resend: The recipient's address is on the suppression list.")
EMAIL_TRANSIENT = ("429 rate_limit_exceeded: Too many requests. You can only make 2 requests per second.",
                   "500 application_error: An unexpected error occurred.",
                   "503 service_unavailable: The service is temporarily unavailable.")
HOUR_WEIGHTS = (1, .6, .4, .3, .3, .5, 1.2, 2.5, 3.5, 4, 4.2, 4.5, 5, 4.8, 4.3, 4.2, 4.5, 5.5, 6.5,
                7, 6.5, 5, 3.5, 2)
FOLLOW_UP_TEXTS = (
    ("Quick question about the {} issue: is it safe to keep driving until the weekend?",
     "Quick question: which brand of parts would you buy for the {} repair?",
     "Follow-up on the {} fix: the noise came back a little. Is that normal?"),
    ("Could we do 10 more minutes on the {} check we started?",
     "Need a few more minutes to finish the {} repair together."),
)
